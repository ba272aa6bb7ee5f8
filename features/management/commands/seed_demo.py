"""Idempotent demo data: a demo login (owner), a viewer login, one workspace per template,
cards in several stages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from features.actions import do_add_member, do_create_feature, do_create_workspace, do_move_feature
from features.models import Feature, Membership, Workspace

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"  # noqa: S105 - printed on purpose: it is a local demo login
# A second login that can look at every demo workspace but change nothing (role "viewer").
VIEWER_USERNAME = "viewer"
VIEWER_PASSWORD = "viewer"  # noqa: S105 - printed on purpose, as above

# (workspace slug, name, template, [(title, kind, stage key, parent title)])
DEMO: list[tuple[str, str, str, list[tuple[str, str, str, str | None]]]] = [
    (
        "quick",
        "Quick demo",
        "quick",
        [
            ("Checkout page", "feature", "idea", None),
            ("Saved carts", "feature", "idea", None),
            ("Guest checkout", "feature", "done", None),
            ("Add address form", "task", "todo", "Guest checkout"),
            ("Validate postcodes", "task", "doing", "Guest checkout"),
        ],
    ),
    (
        "delivery",
        "Delivery demo",
        "delivery",
        [
            ("Invoice extractor", "feature", "live", None),
            ("Timeout in extractor", "incident", "idea", "Invoice extractor"),
            ("Team billing", "feature", "spec", None),
            ("Usage alerts", "feature", "idea", None),
            ("Audit log export", "feature", "building", None),
        ],
    ),
    (
        "product",
        "Product demo",
        "product",
        [
            ("Onboarding revamp", "epic", "inbox", None),
            ("First-run checklist", "story", "inbox", "Onboarding revamp"),
            ("Mobile app", "feature", "discovery", None),
            ("Dark mode", "feature", "ga", None),
        ],
    ),
]


class Command(BaseCommand):
    help = "Create the demo user, workspaces and cards (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        viewer, viewer_created = user_model.objects.get_or_create(username=VIEWER_USERNAME)
        if viewer_created:
            viewer.set_password(VIEWER_PASSWORD)
            viewer.save()
        with transaction.atomic():
            for slug, name, template, cards in DEMO:
                workspace = Workspace.objects.filter(slug=slug).first()
                if workspace is None:
                    workspace = do_create_workspace(
                        name=name, template=template, owner=user, slug=slug
                    )
                do_add_member(workspace, user, Membership.Role.OWNER)
                if not Membership.objects.filter(workspace=workspace, user=viewer).exists():
                    # Only the first time: a role given since in the product is kept.
                    do_add_member(workspace, viewer, Membership.Role.VIEWER)
                self._cards(workspace, user, cards)
        self.stdout.write(
            f"Demo data ready: log in as {DEMO_USERNAME} / {DEMO_PASSWORD}"
            + (" (user created)" if created else "")
            + f", or as {VIEWER_USERNAME} / {VIEWER_PASSWORD} to look without changing anything"
        )

    def _cards(
        self, workspace: Workspace, user: Any, cards: list[tuple[str, str, str, str | None]]
    ) -> None:
        for title, kind, stage_key, parent_title in cards:
            if Feature.objects.filter(workspace=workspace, title=title).exists():
                continue
            parent = (
                Feature.objects.get(workspace=workspace, title=parent_title)
                if parent_title
                else None
            )
            feature = do_create_feature(workspace, title=title, user=user, kind=kind, parent=parent)
            stage = workspace.stages.get(key=stage_key)
            if feature.stage_id != stage.pk:
                do_move_feature(feature, stage, user=user, note="Demo data")
