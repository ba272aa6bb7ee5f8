"""Claude pipelines against a local Messages API server: the real SDK streams from it, and the
engine's retries, timeouts, repairs and permanent failures behave as a person expects."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from features.models import Artifact, Feature
from pipeline import engine
from pipeline.models import ModelPrice, Run
from pipeline.providers import get_provider
from pipeline.providers.base import StepCancelled, StepRequest
from skills.models import RecipeStep
from tests import fake_llm
from tests.engine_helpers import card, chain
from tests.fake_llm import FakeLLM, Reply, error, hang, tool


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    yield from fake_llm.serve(monkeypatch)


@pytest.fixture
def claude(story, fake, settings):
    """The story's workspace on Claude, with a price for its model and fast retries."""
    settings.RUNWAY_RETRY_BASE_SECONDS = 0
    fake_llm.use_provider(story.workspace, "anthropic", "claude-test")
    ModelPrice.objects.create(
        provider="anthropic",
        model="claude-test",
        input_per_mtok=Decimal("3"),
        output_per_mtok=Decimal("15"),
    )
    return story


def messages_requests(fake: FakeLLM) -> list[fake_llm.Seen]:
    return [r for r in fake.requests if r.path.endswith("/v1/messages")]


def test_it_runs_a_whole_quick_pipeline_on_claude(claude, fake, eager):
    feature = card(claude.workspace, "Saved cards")
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    feature.refresh_from_db()
    assert (feature.stage.key, feature.status) == ("done", Feature.Status.DONE)
    architecture, tasks = chain(feature)
    assert [r.status for r in (architecture, tasks)] == ["succeeded", "succeeded"]
    document = Artifact.objects.get(feature=feature, name="architecture.md").content
    for section in ("## Overview", "## Components", "## Data model", "## Risks"):
        assert section in document
    assert list(feature.children.order_by("source_index").values_list("title", flat=True)) == [
        "Model the data",
        "Build the API",
        "Build the UI",
    ]
    # Usage and cost come from the API's counts and the admin's price: 1000 in, 500 out.
    assert (architecture.input_tokens, architecture.output_tokens) == (1000, 500)
    assert architecture.cost_usd == Decimal("0.010500")
    assert tasks.cost_usd == Decimal("0.010500")

    first, second = messages_requests(fake)
    assert first.headers["authorization"] == "Bearer sk-test-key"  # how SDK 2.x sends the key
    assert first.body["model"] == "claude-test"
    assert first.body["stream"] is True
    assert "tools" not in first.body  # documents are plain text
    assert second.body["tool_choice"] == {"type": "tool", "name": "submit_tasks"}
    assert second.body["tools"][0]["input_schema"]["required"] == ["tasks"]
    assert first.headers.get("x-stainless-retry-count") == "0"  # the engine retries, not the SDK


def test_it_waits_as_long_as_retry_after_says_on_a_429_then_succeeds(claude, fake, eager):
    fake.queue(error(429, "rate_limit_error", "Slow down", retry_after="1"))
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    architecture = chain(feature)[0]
    assert (architecture.status, architecture.attempt) == ("succeeded", 2)
    warning = architecture.logs.get(message__startswith="Transient error")
    assert "Anthropic rate limit reached (429): Slow down" in warning.message
    assert warning.message.endswith("retry 1/2 in 1.0 s")


def test_it_retries_an_overloaded_api_twice_then_succeeds(claude, fake, eager):
    fake.queue(error(529, "overloaded_error", "Overloaded"), error(529, "overloaded_error"))
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    architecture = chain(feature)[0]
    assert (architecture.status, architecture.attempt) == ("succeeded", 3)
    assert architecture.logs.filter(message__contains="Anthropic is overloaded (529)").count() == 2
    feature.refresh_from_db()
    assert feature.stage.key == "done"


def test_a_hung_response_hits_the_step_timeout_and_is_retried(claude, fake, eager):
    RecipeStep.objects.filter(recipe__stage__workspace=claude.workspace).update(timeout_seconds=1)
    fake.queue(hang(30))
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    architecture = chain(feature)[0]
    assert (architecture.status, architecture.attempt) == ("succeeded", 2)
    assert architecture.logs.filter(
        message__contains="Anthropic did not answer within the step's timeout of 1 s"
    ).exists()


def test_it_repairs_invalid_structured_output_once(claude, fake, eager):
    fake.queue(Reply(), tool({"tasks": [{"description": "No title", "depends_on": [3]}]}))
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    tasks = chain(feature)[1]
    assert (tasks.status, tasks.attempt) == ("succeeded", 1)
    assert feature.children.count() == 3
    _asked, repaired = messages_requests(fake)[1:]
    result = repaired.body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result"
    assert result["is_error"] is True
    assert "tasks.0.title: Field required" in result["content"]
    # Both calls are paid for.
    assert (tasks.input_tokens, tasks.output_tokens) == (2000, 1000)


def test_output_still_invalid_after_the_repair_fails_with_a_clear_message(claude, fake, eager):
    bad = tool({"tasks": "three of them"})
    fake.queue(Reply(), bad, bad)
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    tasks = chain(feature)[1]
    assert (tasks.status, tasks.attempt, tasks.error_kind) == ("failed", 1, "permanent")
    assert tasks.error_message.startswith(
        "Claude's tasks output for generate-tasks was still invalid after one repair: tasks:"
    )
    assert len(messages_requests(fake)) == 3
    feature.refresh_from_db()
    assert feature.status == Feature.Status.FAILED
    assert feature.status_note.startswith("Failed: Claude's tasks output")


def test_a_rejected_api_key_fails_at_once_and_says_what_to_set(claude, fake, eager):
    fake.queue(error(401, "authentication_error", "invalid x-api-key"))
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    (run,) = chain(feature)
    assert (run.status, run.attempt, run.error_kind) == ("failed", 1, Run.ErrorKind.PERMANENT)
    assert run.error_message == (
        "Anthropic rejected the API key (401): set ANTHROPIC_API_KEY to a valid key for the "
        "workers and Retry."
    )
    assert len(messages_requests(fake)) == 1
    feature.refresh_from_db()
    assert feature.status_note.startswith("Failed: Anthropic rejected the API key (401)")


def test_a_missing_api_key_fails_the_run_naming_the_variable(claude, fake, eager, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    (run,) = chain(feature)
    assert (run.status, run.error_kind) == ("failed", Run.ErrorKind.PERMANENT)
    assert "set ANTHROPIC_API_KEY" in run.error_message
    assert fake.requests == []


def test_a_refusal_fails_permanently(claude, fake, eager):
    fake.queue(Reply(kind="refusal"))
    feature = card(claude.workspace)
    with eager():
        engine.launch_pipeline(feature, claude.owner)

    (run,) = chain(feature)
    assert (run.status, run.error_kind) == ("failed", Run.ErrorKind.PERMANENT)
    assert "declined to answer this step (stop_reason refusal)" in run.error_message


# --- The provider on its own ------------------------------------------------------------------


def _request(output: str = "document", **overrides: Any) -> StepRequest:
    values: dict[str, Any] = {
        "skill_slug": "write-architecture",
        "output": output,
        "artifact_name": "architecture.md",
        "prompt": "Write markdown with these `##` sections: Overview, Risks.",
        "inputs": {},
        "sections": ["Overview", "Risks"],
        "model": "",
        "timeout_seconds": 10,
        "attempt": 1,
    }
    return StepRequest(**(values | overrides))


def test_it_uses_the_configured_model_when_the_recipe_names_none(fake, settings):
    settings.RUNWAY_ANTHROPIC_MODEL = "claude-configured"
    get_provider("anthropic").generate(_request())
    assert fake.requests[0].body["model"] == "claude-configured"


def test_it_reports_progress_while_the_stream_runs(fake, monkeypatch):
    from pipeline.providers import anthropic as module

    monkeypatch.setattr(module, "PROGRESS_EVERY_SECONDS", 0)
    lines: list[str] = []
    output = get_provider("anthropic").generate(_request(model="m", on_log=lines.append))
    assert "## Risks" in output.text
    assert lines
    assert all(line.startswith("m: received ≈") for line in lines)


def test_it_stops_reading_the_stream_when_the_run_is_cancelled(fake):
    request = _request()
    request.cancelled.set()
    with pytest.raises(StepCancelled):
        get_provider("anthropic").generate(request)


def test_a_jury_score_becomes_the_report_and_the_metric(fake):
    output = get_provider("anthropic").generate(_request("score"))
    assert output.data == {"score": 81.0}
    assert output.metrics == {"jury_score": 81.0}
    assert output.text.startswith("## Jury")
