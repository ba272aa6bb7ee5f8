"""factory_boy factories. Workspaces come with their template's stages, recipes and an owner."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import User

from features.actions import do_add_member, do_create_workspace
from features.models import Feature, Membership, Stage, Workspace
from pipeline.models import Run, WorkerHeartbeat


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "password")

    @factory.post_generation
    def _save(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


class WorkspaceFactory(factory.Factory[Workspace]):
    """Goes through do_create_workspace so stages, recipes and gates are the real ones."""

    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")
    template = "quick"
    owner = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class: type[Workspace], *args: Any, **kwargs: Any) -> Workspace:
        return do_create_workspace(
            name=kwargs["name"],
            slug=kwargs["slug"],
            template=kwargs["template"],
            owner=kwargs["owner"],
        )


def add_member(workspace: Workspace, user: User, role: str = Membership.Role.MEMBER) -> Membership:
    return do_add_member(workspace, user, role)


class FeatureFactory(factory.django.DjangoModelFactory[Feature]):
    class Meta:
        model = Feature

    workspace = factory.SubFactory(WorkspaceFactory)
    title = factory.Sequence(lambda n: f"Feature {n}")
    description = "A feature described well enough to build."
    kind = Feature.Kind.FEATURE
    stage = factory.LazyAttribute(
        lambda f: f.workspace.stages.filter(board=Stage.Board.FEATURE).order_by("position").first()
    )
    position = factory.Sequence(lambda n: n)


class RunFactory(factory.django.DjangoModelFactory[Run]):
    """A run of the card's current stage; pass `status` and times as the story needs."""

    class Meta:
        model = Run

    feature = factory.SubFactory(FeatureFactory)
    workspace = factory.LazyAttribute(lambda r: r.feature.workspace)
    stage = factory.LazyAttribute(lambda r: r.feature.stage)
    status = Run.Status.SUCCEEDED


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory[WorkerHeartbeat]):
    """A worker's heartbeat row; pass `last_seen` to make it stale."""

    class Meta:
        model = WorkerHeartbeat

    worker_id = factory.Sequence(lambda n: f"worker-{n}@test")
    hostname = "test"
    pid = factory.Sequence(lambda n: 10_000 + n)
    concurrency = 2
