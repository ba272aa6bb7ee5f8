"""Bulk action filters: each field narrows the count exactly; bad input names what to fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline import bulk
from pipeline.models import Run
from tests.bulk_helpers import T0, run_in
from tests.factories import WorkspaceFactory

Status = Run.Status


def count(workspace, action="retry", **raw):
    return bulk.preview(workspace, action, bulk.parse_filter(raw, workspace, action)).count


@pytest.fixture
def runs(story):
    ws = story.workspace
    return {
        "transient": run_in(ws, "A", error_kind="transient", provider="anthropic"),
        "permanent": run_in(ws, "B", error_kind="permanent", provider="anthropic"),
        "openai": run_in(ws, "C", provider="openai", created=T0 + timedelta(hours=2)),
        "tasks": run_in(ws, "D", stage="tasks", created=T0 + timedelta(days=1)),
        "cancelled": run_in(ws, "E", status=Status.CANCELLED),
        "succeeded": run_in(ws, "F", status=Status.SUCCEEDED),
        "running": run_in(ws, "G", status=Status.RUNNING),
        "queued": run_in(ws, "H", status=Status.QUEUED),
    }


def test_it_counts_what_each_action_can_act_on(story, runs):
    assert count(story.workspace, "retry") == 5  # failed or cancelled
    assert count(story.workspace, "cancel") == 2  # running and queued
    assert count(story.workspace, "rescue") == 1  # running


def test_each_field_narrows_the_count_exactly(story, runs):
    ws = story.workspace
    assert count(ws, status="cancelled") == 1
    assert count(ws, status="failed") == 4
    assert count(ws, stage="tasks") == 1
    assert count(ws, error_kind="permanent") == 1
    assert count(ws, provider="anthropic") == 2
    assert count(ws, provider="openai") == 1
    assert count(ws, created_after=(T0 + timedelta(hours=1)).isoformat()) == 2
    assert count(ws, created_before=(T0 + timedelta(hours=1)).isoformat()) == 3
    # finished = created + 1 min; *_after inclusive, *_before exclusive
    assert count(ws, finished_after=(T0 + timedelta(hours=2, minutes=1)).isoformat()) == 2
    assert count(ws, finished_before=(T0 + timedelta(hours=2, minutes=1)).isoformat()) == 3
    assert count(ws, created_after="2026-11-02") == 1  # a date is midnight, local time
    assert count(ws, provider="anthropic", error_kind="transient", created_before="2026-11-02") == 1


def test_the_sample_is_the_newest_matching_runs(story, runs):
    ws = story.workspace
    shown = bulk.preview(ws, "retry", bulk.parse_filter({}, ws, "retry"))
    assert [r.pk for r in shown.sample][:2] == [runs["tasks"].pk, runs["openai"].pk]


def test_a_retried_run_no_longer_matches(story, runs, no_enqueue):
    from pipeline import engine

    with no_enqueue():
        engine.retry_run(runs["transient"], story.owner)
    assert count(story.workspace, error_kind="transient", provider="anthropic") == 0


def test_it_never_counts_another_workspaces_runs(story, runs):
    other = WorkspaceFactory.create(slug="elsewhere", owner=story.outsider)
    run_in(other, "Theirs", provider="anthropic")
    assert count(story.workspace, provider="anthropic") == 2
    assert count(other, provider="anthropic") == 1


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ({"status": "exploded"}, "status", "Unknown status 'exploded'"),
        ({"status": "succeeded"}, "status", "Retry acts on failed or cancelled runs"),
        ({"stage": "nowhere"}, "stage", "Unknown stage 'nowhere'; choose one of: idea"),
        ({"error_kind": "cosmic"}, "error_kind", "Unknown error_kind 'cosmic'"),
        ({"provider": "skynet"}, "provider", "Unknown provider 'skynet'"),
        ({"created_after": "yesterday"}, "created_after", "a date or time like 2026-11-30"),
        ({"finished_before": "2026-02-30"}, "finished_before", "a date or time like"),
        (
            {"created_after": "2026-11-02", "created_before": "2026-11-01"},
            "created_before",
            "created_before must be later than created_after",
        ),
        ({"provider": "x" * 101}, "provider", "at most 100 characters"),
        ({"stage": 3}, "stage", "give it as text"),
    ],
)
def test_bad_input_names_the_field_to_fix(story, raw, field, says):
    with pytest.raises(bulk.BadFilter) as caught:
        bulk.parse_filter(raw, story.workspace, "retry")
    assert caught.value.field == field
    assert says in caught.value.message


def test_an_unknown_action_is_refused():
    with pytest.raises(bulk.BadFilter, match="Choose an action: retry, cancel, rescue"):
        bulk.parse_action("delete")
