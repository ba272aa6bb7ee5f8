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


def test_it_creates_a_viewer_who_can_look_but_not_change(seeded):
    assert "viewer / viewer" in seeded
    viewer = User.objects.get(username="viewer")
    assert not viewer.is_staff
    roles = set(Membership.objects.filter(user=viewer).values_list("workspace__slug", "role"))
    assert roles == {("quick", "viewer"), ("delivery", "viewer"), ("product", "viewer")}
    client = Client()
    assert client.login(username="viewer", password="viewer")
    assert client.get("/w/quick/").status_code == 200
    card = Feature.objects.filter(workspace__slug="quick").order_by("pk")[0]
    assert client.post(f"/features/{card.pk}/launch").status_code == 403


def test_a_role_given_to_the_viewer_since_is_kept(seeded):
    Membership.objects.filter(user__username="viewer", workspace__slug="quick").update(
        role="member"
    )
    _seed()
    assert Membership.objects.get(user__username="viewer", workspace__slug="quick").role == "member"


def test_it_creates_one_workspace_per_template_owned_by_demo(seeded):
    workspaces = Workspace.objects.order_by("slug")

    assert [(w.slug, w.template) for w in workspaces] == [
        ("delivery", "delivery"),
        ("product", "product"),
        ("quick", "quick"),
    ]
    for workspace in workspaces:
        membership = Membership.objects.get(workspace=workspace, user__username="demo")
        assert membership.role == Membership.Role.OWNER


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
