"""`manage.py pipeline --as USER`: the web's access rules and input limits, from a shell.

Without --as the command is the server's operator; with it, an outsider sees no foreign
workspace or card, a viewer only reads, and text over the web's limits is refused in one line.
"""

from __future__ import annotations

import json

import pytest
from django.core.management.base import CommandError

from features.models import Feature
from pipeline.models import Run
from tests.cli_helpers import pipeline
from tests.conftest import Story
from tests.factories import FeatureFactory

pytestmark = pytest.mark.django_db


def idea(story: Story) -> Feature:
    return FeatureFactory.create(
        workspace=story.workspace, stage=story.workspace.stages.get(key="idea")
    )


def test_an_outsider_cannot_create_a_card_in_a_foreign_workspace(story: Story) -> None:
    before = Feature.objects.count()

    with pytest.raises(CommandError, match="No workspace 'alices-team'"):
        pipeline("--as", "charlie", "create", "Sneaky", "--workspace", "alices-team")
    with pytest.raises(CommandError, match=r"No card #\d+"):
        pipeline("--as", "charlie", "create", "Sneaky", "--parent", str(idea(story).pk))

    assert Feature.objects.count() == before + 1  # only the parent made above


@pytest.mark.parametrize(
    "args",
    [
        ("show", "{pk}"),
        ("runs", "{pk}"),
        ("launch", "{pk}"),
        ("stop", "{pk}"),
        ("retry", "{pk}"),
        ("move", "{pk}", "architecture"),
        ("health", "{pk}"),
        ("list", "--parent", "{pk}"),
    ],
)
def test_an_outsider_sees_no_foreign_card(story: Story, args: tuple[str, ...]) -> None:
    feature = idea(story)

    with pytest.raises(CommandError, match=rf"^No card #{feature.pk}\.$"):
        pipeline("--as", "charlie", *(a.format(pk=feature.pk) for a in args))
    assert not Run.objects.filter(feature=feature).exists()


def test_an_outsider_lists_only_their_own_workspaces(story: Story) -> None:
    with pytest.raises(CommandError, match="known: charlies-team"):
        pipeline("--as", "charlie", "board", "--workspace", "alices-team")
    # Without --workspace, the default is the actor's own workspace, not the server's first.
    assert pipeline("--as", "charlie", "board").startswith("Charlie's team")


@pytest.mark.parametrize(
    "args",
    [
        ("launch", "{pk}"),
        ("stop", "{pk}"),
        ("retry", "{pk}"),
        ("move", "{pk}", "architecture"),
        ("create", "New", "--workspace", "alices-team"),
        ("health", "{pk}", "--clear"),
    ],
)
def test_a_viewer_cannot_change_anything(story: Story, args: tuple[str, ...]) -> None:
    feature = idea(story)
    before = Feature.objects.count()

    with pytest.raises(CommandError, match="Viewers can look but not change anything"):
        pipeline("--as", "vera", *(a.format(pk=feature.pk) for a in args))

    feature.refresh_from_db()
    assert feature.stage.key == "idea"
    assert not Run.objects.filter(feature=feature).exists()
    assert Feature.objects.count() == before


def test_a_viewer_reads(story: Story) -> None:
    feature = idea(story)

    assert json.loads(pipeline("--as", "vera", "show", str(feature.pk), "--json"))["id"] == (
        feature.pk
    )
    assert str(feature.pk) in pipeline("--as", "vera", "list", "--workspace", "alices-team")


def test_a_member_creates_and_launches(story: Story, no_enqueue) -> None:
    with no_enqueue():
        created = json.loads(
            pipeline(
                "--as",
                "bob",
                "create",
                "Bob's card",
                "--workspace",
                "alices-team",
                "--launch",
                "--json",
            )
        )

    assert Run.objects.get(pk=created["run_id"]).triggered_by == story.teammate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "Long", "--description", "x" * 20_001), "at most 20,000 characters"),
        (("create", "Nul\x00title"), "NUL"),
        (("create", "Fine", "--description", "bad \x00 byte"), "NUL"),
        (("create", "x" * 201), "at most 200 characters"),
    ],
)
def test_the_cli_applies_the_webs_input_limits(
    story: Story, args: tuple[str, ...], message: str
) -> None:
    before = Feature.objects.count()

    with pytest.raises(CommandError, match=message):
        pipeline("--as", "alice", *args, "--workspace", "alices-team")
    with pytest.raises(CommandError, match=message):
        pipeline(*args, "--workspace", "alices-team")  # the operator too

    assert Feature.objects.count() == before


def test_a_move_note_over_the_limit_is_refused(story: Story) -> None:
    feature = idea(story)

    with pytest.raises(CommandError, match="at most 500 characters"):
        pipeline("move", str(feature.pk), "architecture", "--note", "n" * 501)
    feature.refresh_from_db()
    assert feature.stage.key == "idea"


def test_deeply_nested_health_json_is_one_line_of_error(story: Story) -> None:
    feature = idea(story)

    with pytest.raises(CommandError, match="nested deeper than"):
        pipeline("health", str(feature.pk), "--set", "[" * 5000 + "]" * 5000)
