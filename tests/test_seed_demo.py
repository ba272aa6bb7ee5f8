"""manage.py seed_demo: a demo login and one workspace per template, safe to run again."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from features.models import Feature, Membership, Stage, StageTransition, Workspace
from pipeline.models import Run


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db) -> str:
    return _seed()


def test_it_creates_a_demo_user_who_can_log_in(seeded):
    assert "demo / demo" in seeded
    assert Client().login(username="demo", password="demo")
    assert User.objects.get(username="demo").is_staff


def test_it_creates_one_workspace_per_template_owned_by_demo(seeded):
    workspaces = Workspace.objects.order_by("slug")

    assert [(w.slug, w.template) for w in workspaces] == [
        ("delivery", "delivery"),
        ("product", "product"),
        ("quick", "quick"),
    ]
    for workspace in workspaces:
        membership = Membership.objects.get(workspace=workspace)
        assert (membership.user.username, membership.role) == ("demo", Membership.Role.OWNER)


def test_it_creates_cards_in_several_stages_some_with_children(seeded):
    assert Feature.objects.count() >= 12
    assert Feature.objects.filter(children__isnull=False).distinct().count() >= 2
    quick = Workspace.objects.get(slug="quick")
    assert quick.features.get(title="Guest checkout").stage.key == "done"
    assert quick.features.get(title="Validate postcodes").stage.key == "doing"
    assert quick.features.get(title="Validate postcodes").stage.board == Stage.Board.WORK
    assert Feature.objects.values("stage__key").distinct().count() >= 6


def test_it_starts_no_pipelines(seeded):
    assert not Run.objects.exists()


def test_it_creates_nothing_new_the_second_time(seeded):
    counts = (
        User.objects.count(),
        Workspace.objects.count(),
        Feature.objects.count(),
        Membership.objects.count(),
        Stage.objects.count(),
        StageTransition.objects.count(),
    )

    output = _seed()

    assert "(user created)" not in output
    assert (
        User.objects.count(),
        Workspace.objects.count(),
        Feature.objects.count(),
        Membership.objects.count(),
        Stage.objects.count(),
        StageTransition.objects.count(),
    ) == counts
    assert Client().login(username="demo", password="demo")
