"""`manage.py pipeline start | accept | reject ID`: a person's decisions, from a shell."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management.base import CommandError

from features.models import Feature
from pipeline.models import Run
from tests.cli_helpers import pipeline
from tests.conftest import Story
from tests.engine_helpers import card, stage

pytestmark = pytest.mark.django_db


def run_at(story: Story, **fields: Any) -> Run:
    feature = card(story.workspace, at="architecture")
    return Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=stage(story.workspace, "architecture"),
        pipeline_next=["tasks"],
        **fields,
    )


@pytest.fixture
def pending(story: Story) -> Run:
    run = run_at(story, status=Run.Status.SUCCEEDED, decision=Run.Decision.PENDING, attempt=1)
    Feature.objects.filter(pk=run.feature_id).update(status=Feature.Status.AWAITING_APPROVAL)
    return run


def test_accept_goes_on_with_the_next_stage(story: Story, pending: Run, no_enqueue: Any) -> None:
    with no_enqueue():
        data = json.loads(pipeline("accept", str(pending.feature_id), "--json"))

    next_run = Run.objects.get(parent_run=pending)
    assert data == {"run_id": pending.pk, "next_run": next_run.pk}
    assert next_run.stage.key == "tasks"
    assert Run.objects.get(pk=pending.pk).decision == Run.Decision.ACCEPTED


def test_reject_records_the_reason_as_the_person(story: Story, pending: Run) -> None:
    out = pipeline("reject", str(pending.feature_id), "--reason", "Too vague", "--as", "bob")

    assert out == f"Rejected run #{pending.pk}\n"
    feature = Feature.objects.get(pk=pending.feature_id)
    assert feature.status_note == "Result rejected by bob: Too vague"
    assert not Run.objects.filter(parent_run=pending).exists()


def test_reject_bounds_the_reason_and_writes_nothing(story: Story, pending: Run) -> None:
    with pytest.raises(CommandError, match="at most 500"):
        pipeline("reject", str(pending.feature_id), "--reason", "x" * 501)

    assert Run.objects.get(pk=pending.pk).decision == Run.Decision.PENDING


def test_a_decision_with_nothing_waiting_says_so(story: Story, pending: Run) -> None:
    pipeline("reject", str(pending.feature_id))

    with pytest.raises(CommandError, match="no result waiting for a decision"):
        pipeline("accept", str(pending.feature_id))


def test_start_queues_the_run_that_waits_for_approval(story: Story, no_enqueue: Any) -> None:
    run = run_at(story, status=Run.Status.AWAITING_APPROVAL)

    with no_enqueue():
        out = pipeline("start", str(run.feature_id), "--as", "bob")

    assert out == f"Started run #{run.pk}\n"
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED
    assert run.triggered_by == story.teammate


def test_a_card_without_runs_has_nothing_to_start(story: Story) -> None:
    fresh = card(story.workspace, at="idea")

    with pytest.raises(CommandError, match="has no run waiting for approval"):
        pipeline("start", str(fresh.pk))


def test_a_viewer_cannot_decide(story: Story, pending: Run) -> None:
    with pytest.raises(CommandError):
        pipeline("accept", str(pending.feature_id), "--as", story.viewer.username)

    assert Run.objects.get(pk=pending.pk).decision == Run.Decision.PENDING
