"""The provider conformance suite: one case per fault kind a real LLM server shows, run against
a loopback server that speaks each protocol (Anthropic Messages, OpenAI chat completions)
through the real SDK, inside a whole pipeline (quick template: architecture.md, then a task
list that becomes cards).

Each case asserts the outcome a person sees: the runs' final states, the number of calls the
server got, the card's children, and what the log and the error say. A new fault kind is one
more `Case` in CASES.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from features.models import Artifact, Feature
from pipeline import engine
from pipeline.models import ModelPrice, Run, RunLog
from skills.models import RecipeStep
from tests import fake_llm
from tests.engine_helpers import card, chain
from tests.fake_llm import FakeLLM, Reply, error, fault, hang, text, tool

PROTOCOLS = ("anthropic", "openai")
MODELS = {"anthropic": "claude-test", "openai": "llama-test"}
LABELS = {"anthropic": "Anthropic", "openai": "The OpenAI-compatible server"}
KEYS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
LIMITS = {"anthropic": "RUNWAY_ANTHROPIC_MAX_TOKENS", "openai": "RUNWAY_OPENAI_MAX_TOKENS"}
CUT_OFF = {"anthropic": "max_tokens", "openai": "length"}
OK = ["succeeded", "succeeded"]

FIVE_TASKS = {
    "tasks": [
        {"title": f"Task {i}", "description": f"Part {i}.", "depends_on": []} for i in range(5)
    ]
}


def document(marker: str = "") -> str:
    """An architecture document that passes the stage's gates, with `marker` in its text."""
    sections = ["Overview", "Components", "Data model", "Risks"]
    return "# Architecture\n\n" + "\n".join(
        f"## {s}\n\nWhat matters for {s.lower()}.{marker}\n" for s in sections
    )


def cut_off_tasks(protocol: str) -> Reply:
    """A task list cut off by the output limit after two of five tasks (the SDKs would hand
    back the two that arrived as a valid list: the bug where 2 cards were made of 5)."""
    raw = json.dumps(FIVE_TASKS)
    partial = raw[: raw.index('{"title": "Task 2"')]
    if protocol == "anthropic":
        return Reply(kind="broken_json", text=partial, stop="max_tokens")
    return text(partial, stop="length")


@dataclass(frozen=True)
class Case:
    """One fault kind and its one right outcome.

    script: the replies queued for the pipeline's calls, per protocol (the first reply goes to
    the architecture step; `on_tasks` puts an ordinary answer first so the fault hits the task
    list). statuses: the runs' final states. calls: requests the server got in all. log and
    error: text expected in a log line and in the failed run's error (`{label}`, `{key}`,
    `{model}`, `{limit}` are filled in per protocol).
    """

    id: str
    script: Callable[[str], list[Reply]]
    statuses: list[str]
    calls: int
    children: int = 3
    log: str = ""
    error: str = ""
    attempts: int = 1  # the first failing-or-faulted run's attempt count
    on_tasks: bool = False
    timeout: int | None = None  # the steps' timeout, for silence faults
    protocols: tuple[str, ...] = PROTOCOLS
    check: Callable[[Feature, FakeLLM, str], None] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _transient(id: str, script: Callable[[str], list[Reply]], log: str, **options: Any) -> Case:
    return Case(id, script, OK, calls=3, log=log, attempts=2, **options)


def _permanent(id: str, script: Callable[[str], list[Reply]], error: str, **options: Any) -> Case:
    return Case(id, script, ["failed"], calls=1, children=0, error=error, log=error, **options)


# --- checks for cases that need more than the table says ----------------------------------


def _retry_after_honoured(feature: Feature, fake: FakeLLM, protocol: str) -> None:
    line = RunLog.objects.get(run=chain(feature)[0], message__startswith="Transient error")
    assert line.message.endswith("retry 1/2 in 1.0 s")


def _text_kept(marker: str) -> Callable[[Feature, FakeLLM, str], None]:
    def check(feature: Feature, fake: FakeLLM, protocol: str) -> None:
        content = Artifact.objects.get(feature=feature, name="architecture.md").content
        assert marker in content
        architecture = chain(feature)[0]
        assert (architecture.input_tokens, architecture.output_tokens) == (1000, 500)

    return check


def _parameter_dropped(feature: Feature, fake: FakeLLM, protocol: str) -> None:
    first, second, third = (r.body for r in fake.requests)
    assert first["stream_options"] == {"include_usage": True}
    assert "stream_options" not in second
    assert "stream_options" not in third  # the process remembers what this server rejects


def _asked_with_a_higher_limit(feature: Feature, fake: FakeLLM, protocol: str) -> None:
    limits = [r.body.get("max_tokens") for r in fake.requests[1:]]
    assert limits == ([8192, 16384] if protocol == "anthropic" else [None, 4096])


def _document_flagged(feature: Feature, fake: FakeLLM, protocol: str) -> None:
    artifact = Artifact.objects.get(feature=feature, name="architecture.md")
    assert artifact.truncated
    assert not Artifact.objects.get(feature=feature, name="tasks.json").truncated


def _cost_unknown(feature: Feature, fake: FakeLLM, protocol: str) -> None:
    architecture, tasks = chain(feature)
    assert architecture.cost_usd is None
    assert tasks.cost_usd == Decimal("0.010500")


def _titles_storable(feature: Feature, fake: FakeLLM, protocol: str) -> None:
    titles = list(feature.children.order_by("source_index").values_list("title", flat=True))
    assert titles[0] == "Model \ufffd the data"


CASES = [
    # Transient: retried with backoff, counted per step, and the pipeline still finishes.
    _transient(
        "429-retry-after",
        lambda p: [error(429, "rate_limit_error", "Slow down", retry_after="1")],
        "{label} rate limit reached (429): Slow down",
        check=_retry_after_honoured,
    ),
    _transient(
        "529-overloaded",
        lambda p: [error(529, "overloaded_error", "Overloaded")],
        "{label} is overloaded (529): Overloaded",
    ),
    _transient(
        "500-server-error",
        lambda p: [error(500, "api_error", "Internal server error")],
        "{label} server error (500): Internal server error",
    ),
    _transient(
        "nul-in-transient-error-text",
        lambda p: [error(503, "api_error", "busy \x00 now")],
        "{label} server error (503): busy \ufffd now",
    ),
    _transient(
        "silent-before-headers",
        lambda p: [hang(30)],
        "{label} did not answer within the step's timeout of 1 s",
        timeout=1,
    ),
    _transient(
        "silent-mid-stream",
        lambda p: [fault("stall", seconds=30, after=2)],
        "{label} did not answer within the step's timeout of 1 s",
        timeout=1,
    ),
    _transient(
        "keep-alives-but-no-answer",
        lambda p: [fault("stall", seconds=30, after=2, trickle=True)],
        "{label} did not answer within the step's timeout of 1 s",
        timeout=1,
    ),
    _transient("connection-dropped", lambda p: [fault("drop")], "Could not reach {label} at"),
    _transient(
        "stream-cut-short",
        lambda p: [fault("cut", after=3)],
        "{label} closed the stream before the answer was complete",
    ),
    _transient(
        "rate-limit-error-event",
        lambda p: [
            fault("event_error", error_type="rate_limit_error", message="Rate limited")
            if p == "anthropic"
            else fault(
                "event_error",
                body={"error": {"code": "rate_limit_exceeded", "message": "Rate limited"}},
            )
        ],
        "{label} rate limit reached (429): Rate limited",
    ),
    _transient(
        "error-event-as-plain-text",
        lambda p: [
            fault("event_error", body="Rate limit reached, slow down")
            if p == "anthropic"
            else fault("event_error", body={"error": "Rate limit reached, slow down"})
        ],
        "{label} rate limit reached (429): Rate limit reached, slow down",
    ),
    _transient(
        "overloaded-error-event",
        lambda p: [
            fault("event_error", error_type="overloaded_error", message="Overloaded")
            if p == "anthropic"
            else fault(
                "event_error",
                body={"error": {"type": "server_error", "code": 503, "message": "Overloaded"}},
            )
        ],
        "Overloaded",
    ),
    # Odd but valid shapes: the answer is read as it is, the first time.
    Case(
        "multi-line-events",
        lambda p: [Reply(multiline=True), Reply(multiline=True)],
        OK,
        calls=2,
        check=_text_kept("What matters for risks."),
    ),
    Case(
        "line-separators-in-text",
        lambda p: [text(document(" A\u2028B\u0085C\u2029D"))],
        OK,
        calls=2,
        check=_text_kept("A\u2028B\u0085C\u2029D"),
    ),
    Case(
        "plain-json-body-for-a-stream",
        lambda p: [fault("plain_json"), fault("plain_json")],
        OK,
        calls=2,
        protocols=("openai",),
        check=_text_kept("## Risks"),
    ),
    # Permanent: fails once, at once, with the server's own message.
    _permanent(
        "401-bad-key",
        lambda p: [error(401, "authentication_error", "invalid x-api-key")],
        "{label} rejected the API key (401): set {key} to a valid key",
    ),
    _permanent(
        "403-forbidden",
        lambda p: [error(403, "permission_error", "Your key cannot use this model")],
        "{label} refused the request (403): Your key cannot use this model",
    ),
    _permanent(
        "404-unknown-model",
        lambda p: [error(404, "not_found_error", "model: {model} not found")],
        "{label} answered 404 for model '{model}'",
    ),
    _permanent(
        "400-bad-request",
        lambda p: [error(400, "invalid_request_error", "prompt is too long: 250000 > 200000")],
        "{label} rejected the request (400): prompt is too long: 250000 > 200000",
    ),
    _permanent(
        "nul-in-error-text",
        lambda p: [error(400, "invalid_request_error", "bad byte \x00 in input")],
        "{label} rejected the request (400): bad byte \ufffd in input",
    ),
    _permanent(
        "lone-surrogate-in-error-text",
        lambda p: [error(400, "invalid_request_error", "bad char \ud800 in input")],
        "{label} rejected the request (400): bad char \ufffd in input",
    ),
    _permanent(
        "429-quota-exhausted",
        lambda p: [
            error(
                429,
                "insufficient_quota",
                body={
                    "error": {
                        "type": "insufficient_quota",
                        "code": "insufficient_quota",
                        "message": "You exceeded your current quota",
                    }
                },
            )
        ],
        "{label} refused the request for billing reasons (402): You exceeded your current quota",
        protocols=("openai",),
    ),
    _permanent(
        "refusal",
        lambda p: [Reply(kind="refusal")],
        "declined to answer this step",
    ),
    # An optional parameter the server does not know: asked again without it, once, logged.
    Case(
        "unsupported-stream-options",
        lambda p: [
            error(
                400,
                "BadRequestError",
                body={
                    "object": "error",
                    "message": "[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'),"
                    " 'msg': 'Extra inputs are not permitted'}]",
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                },
            )
        ],
        OK,
        calls=3,
        log="{label} rejected the optional parameter stream_options",
        protocols=("openai",),
        check=_parameter_dropped,
    ),
    # A structured answer cut off by the output limit never becomes cards.
    Case(
        "task-list-cut-off-once",
        lambda p: [cut_off_tasks(p)],
        OK,
        calls=3,
        log="answer was cut off at the output limit",
        on_tasks=True,
        check=_asked_with_a_higher_limit,
    ),
    Case(
        "task-list-cut-off-twice",
        lambda p: [cut_off_tasks(p), cut_off_tasks(p)],
        ["succeeded", "failed"],
        calls=3,
        children=0,
        error="was cut off at the",
        log="Raise {limit}",
        on_tasks=True,
    ),
    Case(
        "invalid-task-list-after-repair",
        lambda p: [tool({"tasks": "three of them"}), tool({"tasks": "three of them"})],
        ["succeeded", "failed"],
        calls=3,
        children=0,
        error="output for generate-tasks was still invalid after one repair",
        on_tasks=True,
    ),
    # A document cut off is kept, flagged and logged.
    Case(
        "document-cut-off",
        lambda p: [text(document(), stop=CUT_OFF[p])],
        OK,
        calls=2,
        log="architecture.md was cut off at the model's output limit",
        check=_document_flagged,
    ),
    # Text that PostgreSQL cannot store (NUL) is made storable; nothing is lost with it.
    Case(
        "nul-in-document",
        lambda p: [text(document(" x\x00y"))],
        OK,
        calls=2,
        check=_text_kept(" x\ufffdy"),
    ),
    Case(
        "nul-in-task-list",
        lambda p: [
            tool(
                {
                    "tasks": [
                        {"title": "Model \x00 the data", "description": "d\x00", "depends_on": []}
                    ]
                }
            )
        ],
        OK,
        calls=2,
        children=1,
        on_tasks=True,
        check=_titles_storable,
    ),
    # No usage reported: the cost is unknown, not $0, and the log says so.
    Case(
        "no-usage-reported",
        lambda p: [Reply(usage=False)],
        OK,
        calls=2,
        log="reported no token usage for this step: its cost is unknown",
        check=_cost_unknown,
    ),
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    yield from fake_llm.serve(monkeypatch)


def _params() -> list[Any]:
    return [
        pytest.param(protocol, case, id=f"{protocol}-{case.id}")
        for case in CASES
        for protocol in PROTOCOLS
        if protocol in case.protocols
    ]


def _fill(template: str, protocol: str) -> str:
    return template.format(
        label=LABELS[protocol], key=KEYS[protocol], model=MODELS[protocol], limit=LIMITS[protocol]
    )


@pytest.mark.parametrize(("protocol", "case"), _params())
def test_it_gives_each_fault_its_one_outcome(protocol, case, story, fake, eager, settings):
    settings.RUNWAY_RETRY_BASE_SECONDS = 0
    workspace = story.workspace
    fake_llm.use_provider(workspace, protocol, MODELS[protocol])
    ModelPrice.objects.create(
        provider=protocol,
        model=MODELS[protocol],
        input_per_mtok=Decimal("3"),
        output_per_mtok=Decimal("15"),
    )
    if case.timeout is not None:
        RecipeStep.objects.filter(recipe__stage__workspace=workspace).update(
            timeout_seconds=case.timeout
        )
    replies = case.script(protocol)
    for reply in replies:
        reply.message = _fill(reply.message, protocol)
    fake.queue(*([Reply()] if case.on_tasks else []), *replies)
    feature = card(workspace, "Saved cards")

    with eager():
        engine.launch_pipeline(feature, story.owner)

    runs = chain(feature)
    assert [r.status for r in runs] == case.statuses
    assert len(fake.requests) == case.calls
    assert feature.children.count() == case.children
    faulted = runs[1] if case.on_tasks else runs[0]
    assert faulted.attempt == case.attempts
    assert not Run.objects.filter(feature=feature, status__in=Run.ACTIVE_STATUSES).exists()
    lines = list(RunLog.objects.filter(run__feature=feature).values_list("message", flat=True))
    if case.log:
        assert any(_fill(case.log, protocol) in line for line in lines), lines
    failed = [r for r in runs if r.status == "failed"]
    if case.error:
        (run,) = failed
        assert _fill(case.error, protocol) in run.error_message
        assert run.error_kind == Run.ErrorKind.PERMANENT
        feature.refresh_from_db()
        assert feature.status == Feature.Status.FAILED
        assert feature.status_note.startswith("Failed: ")
    else:
        assert failed == []
    if case.check is not None:
        case.check(feature, fake, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_pipeline_whose_every_step_sees_one_transient_fault_succeeds_once_per_stage(
    protocol, delivery_story, fake, eager, settings
):
    """spec (1 step) → spec-review (2 steps: review, task list): a different fault per step."""
    settings.RUNWAY_RETRY_BASE_SECONDS = 0
    workspace = delivery_story.workspace
    fake_llm.use_provider(workspace, protocol, MODELS[protocol])
    rate_limited = (
        fault("event_error", error_type="rate_limit_error", message="Rate limited")
        if protocol == "anthropic"
        else fault("event_error", body={"error": {"code": "rate_limit_exceeded", "message": "x"}})
    )
    fake.queue(
        error(529, "overloaded_error", "Overloaded", retry_after="1"),
        Reply(),
        fault("drop"),
        Reply(),
        rate_limited,
    )
    feature = card(workspace, "Saved cards")

    with eager():
        engine.launch_pipeline(feature, delivery_story.owner)

    runs = chain(feature)
    assert [(r.stage.key, r.status) for r in runs] == [
        ("spec", "succeeded"),
        ("spec-review", "succeeded"),
    ]
    assert [r.attempt for r in runs] == [2, 3]
    # Counted per step: the task list's fault is its step's first, not the run's second.
    retries = runs[1].logs.filter(message__startswith="Transient error").order_by("seq")
    assert [line.message.split("; ")[-1][:9] for line in retries] == ["retry 1/2"] * 2
    assert len(fake.requests) == 6  # three steps, each failed once and answered once
    names = list(Artifact.objects.filter(feature=feature).values_list("name", "version"))
    assert sorted(names) == [("spec-review.md", 1), ("spec.md", 1), ("tasks.json", 1)]
    assert feature.children.count() == 3
    feature.refresh_from_db()
    assert feature.stage.key == "building"
