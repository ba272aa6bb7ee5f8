from __future__ import annotations

from features.models import Feature, Stage, Workspace
from pipeline.models import Run


def stage(workspace: Workspace, key: str) -> Stage:
    return workspace.stages.get(key=key)


def card(
    workspace: Workspace,
    title: str = "Checkout page",
    *,
    at: str | None = None,
    description: str = "Let shoppers pay with a saved card.",
) -> Feature:
    from features.actions import do_create_feature

    feature = do_create_feature(workspace, title=title, description=description, user=None)
    if at is not None:
        Feature.objects.filter(pk=feature.pk).update(stage=stage(workspace, at))
        feature.refresh_from_db()
    return feature


def chain(feature: Feature) -> list[Run]:
    return list(Run.objects.filter(feature=feature).select_related("stage").order_by("id"))
