"""`manage.py pipeline ...`: the same services as the board, driven from a shell.

Commands that launch enqueue their Celery task in `transaction.on_commit`; those calls run
inside `django_capture_on_commit_callbacks(execute=False)` so no message leaves the test, and
the tests read the outcome from the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management.base import CommandError

from features.models import Feature, Stage, StageTransition
from pipeline.models import Run
from tests.cli_helpers import pipeline, pipeline_json
from tests.conftest import Story
from tests.factories import FeatureFactory
from tests.integration.processes import shared_database_url

pytestmark = pytest.mark.django_db


def stage(story: Story, key: str) -> Stage:
    return story.workspace.stages.get(key=key)


def card(story: Story, key: str = "idea", **kwargs: Any) -> Feature:
    return FeatureFactory.create(workspace=story.workspace, stage=stage(story, key), **kwargs)


# --- create ----------------------------------------------------------------------------------


def test_it_creates_a_card_and_prints_only_its_id(story: Story) -> None:
    out = pipeline("create", "Checkout page", "--workspace", story.workspace.slug)

    feature = Feature.objects.get(title="Checkout page")
    assert out == f"{feature.pk}\n"
    first = story.workspace.stages.filter(board=Stage.Board.FEATURE).order_by("position").first()
    assert feature.stage == first
    assert feature.stage.key == "idea"
    assert feature.workspace == story.workspace
    assert feature.kind == Feature.Kind.FEATURE


def test_it_puts_a_task_on_the_work_boards_todo(story: Story) -> None:
    out = pipeline("create", "Wire the button", "--kind", "task", "--workspace", "alices-team")

    feature = Feature.objects.get(pk=int(out))
    assert feature.kind == Feature.Kind.TASK
    assert feature.stage.board == Stage.Board.WORK
    assert feature.stage.key == "todo"


def test_it_links_a_child_to_its_parent_and_the_parents_workspace(story: Story) -> None:
    # The parent lives in the second workspace, which is not the CLI's default one.
    other = story.outsider.memberships.get().workspace
    parent = FeatureFactory.create(workspace=other)

    out = pipeline("create", "Sub-feature", "--parent", str(parent.pk))

    child = Feature.objects.get(pk=int(out))
    assert child.parent == parent
    assert child.workspace == other
    assert child.stage.workspace == other


def test_it_creates_a_card_in_the_given_stage(story: Story) -> None:
    out = pipeline("create", "Half-planned", "--stage", "tasks", "--workspace", "alices-team")

    feature = Feature.objects.get(pk=int(out))
    assert feature.stage == stage(story, "tasks")
    assert not feature.runs.exists()  # creating in a stage does not start its automation


def test_it_prints_the_created_card_as_json(story: Story) -> None:
    data = pipeline_json("create", "Checkout page", "--workspace", "alices-team")

    feature = Feature.objects.get(title="Checkout page")
    assert data["id"] == feature.pk
    assert data["title"] == "Checkout page"
    assert data["stage"] == "idea"
    assert data["workspace"] == "alices-team"


def test_it_creates_and_launches(story: Story, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        data = pipeline_json("create", "Checkout page", "--workspace", "alices-team", "--launch")

    feature = Feature.objects.get(pk=data["id"])
    run = Run.objects.get(feature=feature)
    assert data["run_id"] == run.pk
    assert data["pipeline"] == ["architecture", "tasks"]
    assert run.status == Run.Status.QUEUED
    assert feature.stage.key == "architecture"


def test_it_prints_the_launched_card_as_it_is_after_the_launch(
    story: Story, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        data = pipeline_json("create", "Checkout page", "--workspace", "alices-team", "--launch")

    # Launching from `idea` moves the card to `architecture` and queues it; a script reading
    # the JSON must see that, not the card as it was before the launch.
    assert data["stage"] == "architecture"
    assert data["status"] == Feature.Status.QUEUED


# --- launch, stop, retry -----------------------------------------------------------------------


def test_it_launches_a_cards_pipeline(
    story: Story, django_capture_on_commit_callbacks: Any
) -> None:
    feature = card(story, "idea")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        out = pipeline("launch", str(feature.pk))

    run = Run.objects.get(feature=feature)
    assert run.status == Run.Status.QUEUED
    assert run.stage.key == "architecture"
    assert run.pipeline_next == ["tasks"]
    assert out == f"Launched run #{run.pk}: architecture → tasks\n"
    feature.refresh_from_db()
    assert feature.stage.key == "architecture"
    assert feature.status == Feature.Status.QUEUED
    assert callbacks  # the enqueue waits for the commit


def test_it_prints_the_launch_as_json(
    story: Story, django_capture_on_commit_callbacks: Any
) -> None:
    feature = card(story, "idea")

    with django_capture_on_commit_callbacks(execute=False):
        data = pipeline_json("launch", str(feature.pk))

    run = Run.objects.get(feature=feature)
    assert data == {"run_id": run.pk, "pipeline": ["architecture", "tasks"], "resumed": False}


def test_it_refuses_to_launch_twice(story: Story, django_capture_on_commit_callbacks: Any) -> None:
    feature = card(story, "idea")
    with django_capture_on_commit_callbacks(execute=False):
        pipeline("launch", str(feature.pk))

        with pytest.raises(CommandError, match="already"):
            pipeline("launch", str(feature.pk))

    assert Run.objects.filter(feature=feature).count() == 1


def test_it_stops_the_active_run(story: Story, django_capture_on_commit_callbacks: Any) -> None:
    feature = card(story, "idea")
    with django_capture_on_commit_callbacks(execute=False):
        pipeline("launch", str(feature.pk))
        out = pipeline("stop", str(feature.pk))

    assert out == "Stopped 1 run(s).\n"
    run = Run.objects.get(feature=feature)
    assert run.status == Run.Status.CANCELLED
    assert run.pipeline_next == []
    feature.refresh_from_db()
    assert feature.status == Feature.Status.IDLE


def test_it_refuses_to_stop_when_nothing_runs(story: Story) -> None:
    feature = card(story, "idea")

    with pytest.raises(CommandError, match="Nothing to stop"):
        pipeline("stop", str(feature.pk))


def test_it_retries_the_last_failed_run(
    story: Story, django_capture_on_commit_callbacks: Any
) -> None:
    architecture = stage(story, "architecture")
    feature = card(story, "architecture")
    failed = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=architecture,
        status=Run.Status.FAILED,
        attempt=1,
        error_message="boom",
    )

    with django_capture_on_commit_callbacks(execute=False):
        data = pipeline_json("retry", str(feature.pk))

    retry = Run.objects.get(parent_run=failed)
    assert data == {"run_id": retry.pk, "retry_of": failed.pk}
    assert retry.status == Run.Status.QUEUED
    assert retry.stage == architecture
    assert retry.pipeline_next == ["tasks"]


def test_it_refuses_to_retry_when_nothing_failed(
    story: Story, django_capture_on_commit_callbacks: Any
) -> None:
    fresh = card(story, "idea")
    with pytest.raises(CommandError, match="no failed run"):
        pipeline("retry", str(fresh.pk))

    running = card(story, "idea")
    with django_capture_on_commit_callbacks(execute=False):
        pipeline("launch", str(running.pk))
        with pytest.raises(CommandError, match="no failed run"):
            pipeline("retry", str(running.pk))

    assert Run.objects.filter(feature=running).count() == 1


# --- move ------------------------------------------------------------------------------------


def test_it_moves_a_card_with_a_note(story: Story) -> None:
    feature = card(story, "idea")

    out = pipeline("move", str(feature.pk), "done", "--note", "Shipped by hand")

    assert out == f"#{feature.pk} is now in Done\n"
    feature.refresh_from_db()
    assert feature.stage.key == "done"
    transition = StageTransition.objects.filter(feature=feature).latest("id")
    assert transition.from_stage == stage(story, "idea")
    assert transition.to_stage == stage(story, "done")
    assert transition.note == "Shipped by hand"
    assert not feature.runs.exists()


def test_it_moves_a_task_across_the_work_board(story: Story) -> None:
    task = card(story, "todo", kind=Feature.Kind.TASK)

    data = pipeline_json("move", str(task.pk), "doing", "--note", "Picked up")

    assert data["stage"] == "doing"
    assert StageTransition.objects.filter(feature=task, note="Picked up").exists()


def test_it_lists_the_stage_keys_for_an_unknown_stage(story: Story) -> None:
    feature = card(story, "idea")

    with pytest.raises(CommandError) as excinfo:
        pipeline("move", str(feature.pk), "nowhere")

    message = str(excinfo.value)
    assert "'nowhere'" in message
    for key in ("idea", "architecture", "tasks", "done", "todo", "doing", "review", "finished"):
        assert key in message
    feature.refresh_from_db()
    assert feature.stage.key == "idea"


# --- show, list, runs, board ---------------------------------------------------------------------


def test_it_shows_a_card_with_its_children(story: Story) -> None:
    parent = card(story, "idea", title="Checkout")
    first = card(story, "todo", kind=Feature.Kind.TASK, title="Add the button", parent=parent)
    second = card(story, "doing", kind=Feature.Kind.TASK, title="Call the API", parent=parent)

    out = pipeline("show", str(parent.pk), "--children")

    lines = out.splitlines()
    assert lines[0] == f"#{parent.pk} Checkout"
    assert f"  └ #{first.pk} [task] Add the button (todo)" in lines
    assert f"  └ #{second.pk} [task] Call the API (doing)" in lines


def test_it_shows_a_card_as_json_with_its_children(story: Story) -> None:
    parent = card(story, "idea", title="Checkout")
    child = card(story, "todo", kind=Feature.Kind.TASK, title="Add the button", parent=parent)

    data = pipeline_json("show", str(parent.pk), "--children")

    assert data["id"] == parent.pk
    assert data["children"] == [
        {
            "id": child.pk,
            "title": "Add the button",
            "kind": "task",
            "stage": "todo",
            "status": "idle",
        },
    ]


def test_it_filters_the_list(story: Story) -> None:
    idea = card(story, "idea", title="An idea")
    epic = card(story, "architecture", kind=Feature.Kind.EPIC, title="An epic")
    task = card(story, "todo", kind=Feature.Kind.TASK, title="A task", parent=epic)
    FeatureFactory.create(workspace=story.outsider.memberships.get().workspace, title="Not ours")

    def ids(*args: str) -> list[int]:
        return [row["id"] for row in pipeline_json("list", "--workspace", "alices-team", *args)]

    assert sorted(ids()) == sorted([idea.pk, epic.pk, task.pk])
    assert ids("--stage", "idea") == [idea.pk]
    assert ids("--kind", "epic") == [epic.pk]
    assert ids("--parent", str(epic.pk)) == [task.pk]
    assert ids("--stage", "done") == []

    text = pipeline("list", "--workspace", "alices-team", "--stage", "idea")
    assert text.startswith(f"#{idea.pk}")
    assert "An idea" in text
    assert "An epic" not in text
    assert pipeline("list", "--workspace", "alices-team", "--stage", "done") == "No cards.\n"


def test_it_prints_the_list_as_json(story: Story) -> None:
    feature = card(story, "idea", title="An idea")

    data = pipeline_json("list", "--workspace", "alices-team")

    assert isinstance(data, list)
    assert [row["id"] for row in data] == [feature.pk]
    assert data[0]["title"] == "An idea"
    assert data[0]["stage"] == "idea"


def test_it_prints_the_run_chain(story: Story) -> None:
    architecture, tasks = stage(story, "architecture"), stage(story, "tasks")
    feature = card(story, "tasks")
    first = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=architecture,
        status=Run.Status.SUCCEEDED,
        attempt=1,
    )
    second = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=tasks,
        parent_run=first,
        status=Run.Status.FAILED,
        attempt=2,
        error_message="boom",
    )

    lines = pipeline("runs", str(feature.pk)).splitlines()

    assert len(lines) == 2
    assert lines[0].startswith(f"#{first.pk}")
    assert "architecture" in lines[0]
    assert "←" not in lines[0]
    assert lines[1].startswith(f"#{second.pk}")
    assert f"← #{first.pk}" in lines[1]
    assert "attempt 2" in lines[1]
    assert lines[1].endswith("boom")

    data = pipeline_json("runs", str(feature.pk))
    assert [(r["id"], r["status"], r["attempt"], r["parent_run"]) for r in data] == [
        (first.pk, "succeeded", 1, None),
        (second.pk, "failed", 2, first.pk),
    ]


def test_it_prints_the_board_with_counts(story: Story) -> None:
    card(story, "idea")
    card(story, "idea")
    card(story, "todo", kind=Feature.Kind.TASK)

    lines = pipeline("board", "--workspace", "alices-team").splitlines()

    assert lines[0] == "Alice's team (alices-team)"
    assert "    IDEA (2)" in lines
    assert "    ARCHITECTURE (0)" in lines
    assert "    TO DO (1)" in lines
    assert lines.index("  Feature board:") < lines.index("    IDEA (2)")
    assert lines.index("  Work board:") < lines.index("    TO DO (1)")


# --- errors ----------------------------------------------------------------------------------


def test_it_refuses_an_unknown_card(story: Story) -> None:
    with pytest.raises(CommandError, match=r"^No card #999\.$"):
        pipeline("show", "999")


def test_it_refuses_an_unknown_actor(story: Story) -> None:
    feature = card(story, "idea")

    with pytest.raises(CommandError, match="nobody"):
        pipeline("--as", "nobody", "show", str(feature.pk))


@pytest.mark.django_db(transaction=True)
def test_it_exits_non_zero_with_one_line_on_stderr() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": shared_database_url(),
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "pipeline", "show", "999999"],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "No card #999999" in lines[0]


def test_its_runs_json_gives_tokens_and_cost_null_when_unknown(story: Story) -> None:
    feature = card(story, "architecture")
    known = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=feature.stage,
        status=Run.Status.SUCCEEDED,
        provider="anthropic",
        model="claude-test",
        input_tokens=1000,
        output_tokens=500,
        cache_read_tokens=200,
        cache_write_tokens=100,
        cost_usd=Decimal("0.0105"),
    )
    unknown = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=feature.stage,
        parent_run=known,
        status=Run.Status.SUCCEEDED,
        provider="openai",
        model="llama-test",
        cost_usd=None,
    )

    first, second = pipeline_json("runs", str(feature.pk))

    assert (first["id"], first["provider"], first["model"]) == (
        known.pk,
        "anthropic",
        "claude-test",
    )
    assert [first[k] for k in ("input_tokens", "output_tokens")] == [1000, 500]
    assert [first[k] for k in ("cache_read_tokens", "cache_write_tokens")] == [200, 100]
    assert first["cost_usd"] == 0.0105
    assert (second["id"], second["cost_usd"]) == (unknown.pk, None)
    assert "unknown" in pipeline("runs", str(feature.pk)).splitlines()[1]
