"""OfflineProvider.generate: real output for every built-in skill, and failures on request."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.providers.base import (
    PermanentProviderError,
    StepCancelled,
    StepRequest,
    TransientProviderError,
)
from pipeline.providers.offline import OfflineProvider
from skills.catalog import LIBRARY_DIR, SkillDefinition, parse_skill_dir
from skills.gates import ArtifactView, GateSpec, blocking_failures, evaluate

DOCUMENT_SKILLS = sorted(
    p.name
    for p in LIBRARY_DIR.iterdir()
    if p.is_dir() and parse_skill_dir(p).output in ("document", "score")
)


@pytest.fixture(autouse=True)
def _no_delay(settings):
    settings.RUNWAY_OFFLINE_DELAY_SECONDS = 0
    settings.RUNWAY_OFFLINE_JITTER_SECONDS = 0


def _definition(slug: str) -> SkillDefinition:
    return parse_skill_dir(LIBRARY_DIR / slug)


def _request(slug: str, title: str = "Checkout", description: str = "", attempt: int = 1):
    definition = _definition(slug)
    return StepRequest(
        skill_slug=slug,
        output=definition.output,
        artifact_name=definition.artifact_name,
        prompt=definition.prompt_template,
        inputs={"title": title, "description": description},
        sections=definition.sections,
        model="",
        timeout_seconds=30,
        attempt=attempt,
    )


def _section_gate(slug: str) -> GateSpec:
    definition = _definition(slug)
    return GateSpec(
        "sections",
        "content_check",
        {"file": definition.artifact_name, "required_sections": definition.sections},
    )


def _gate_results(slug: str, text: str):
    artifact = ArtifactView(_definition(slug).artifact_name, "document", text)
    return evaluate([_section_gate(slug)], [artifact], {})


def test_it_knows_some_document_skills():
    assert "write-architecture" in DOCUMENT_SKILLS
    assert "jury-validate" in DOCUMENT_SKILLS


@pytest.mark.parametrize("slug", DOCUMENT_SKILLS)
def test_it_writes_every_requested_section_so_the_gate_passes(slug):
    output = OfflineProvider().generate(_request(slug))

    for section in _definition(slug).sections:
        assert f"## {section}\n" in output.text
    assert blocking_failures(_gate_results(slug, output.text)) == []


def test_it_writes_about_the_card():
    output = OfflineProvider().generate(
        _request("write-architecture", title="Guest checkout", description="Postcodes matter.")
    )

    assert output.text.startswith("# Architecture: Guest checkout\n")
    assert "Postcodes" in output.text
    assert output.usage.output_tokens > 0


def test_it_omits_a_section_when_told_so_the_gate_fails():
    request = _request("write-architecture", description="Tiny. [offline:omit=Risks]")

    output = OfflineProvider().generate(request)

    assert "## Risks" not in output.text
    assert "## Overview" in output.text
    (failure,) = blocking_failures(_gate_results("write-architecture", output.text))
    assert "Risks" in failure.message


def test_it_writes_a_json_task_list_with_backward_dependencies():
    output = OfflineProvider().generate(_request("generate-tasks", title="Guest checkout"))

    data = json.loads(output.text)
    assert data == output.data
    tasks = data["tasks"]
    assert 3 <= len(tasks) <= 6
    for index, task in enumerate(tasks):
        assert task["title"]
        assert task["description"]
        assert all(0 <= d < index for d in task["depends_on"]), (index, task["depends_on"])


@pytest.mark.parametrize("title", ["A", "Checkout", "Saved carts", "Dark mode", "Usage alerts"])
def test_it_keeps_task_lists_in_range_for_any_title(title):
    tasks = OfflineProvider().generate(_request("generate-tasks", title=title)).data["tasks"]

    assert 3 <= len(tasks) <= 6
    assert all(all(d < i for d in t["depends_on"]) for i, t in enumerate(tasks))


def test_it_gives_the_same_tasks_for_the_same_title():
    provider = OfflineProvider()

    first = provider.generate(_request("generate-tasks", title="Saved carts"))
    second = provider.generate(_request("generate-tasks", title="Saved carts"))

    assert first.text == second.text


def test_it_varies_the_task_count_across_titles():
    counts = {
        len(
            OfflineProvider()
            .generate(_request("generate-tasks", title=f"Feature {i}"))
            .data["tasks"]
        )
        for i in range(40)
    }

    assert len(counts) > 1
    assert counts <= {3, 4, 5, 6}


def test_it_reports_a_jury_score_metric():
    output = OfflineProvider().generate(_request("jury-validate"))

    score = output.metrics["jury_score"]
    assert 70 <= score <= 95
    assert output.data == {"score": score}
    assert f"**{score:.0f} / 100**" in output.text


def test_it_sets_the_score_when_told():
    output = OfflineProvider().generate(_request("jury-validate", description="[offline:score=40]"))

    assert output.metrics == {"jury_score": 40.0}
    assert "**40 / 100**" in output.text
    gate = GateSpec("jury", "metric_threshold", {"metric": "jury_score", "threshold": 70})
    assert blocking_failures(evaluate([gate], [], output.metrics))


def test_it_fails_permanently_when_told():
    request = _request("write-architecture", description="[offline:fail=permanent]")

    with pytest.raises(PermanentProviderError, match="offline:fail=permanent"):
        OfflineProvider().generate(request)


def test_it_fails_transiently_for_the_first_attempts_when_told():
    provider = OfflineProvider()
    description = "Flaky. [offline:fail=transient:2]"

    for attempt in (1, 2):
        with pytest.raises(TransientProviderError) as caught:
            provider.generate(
                _request("write-architecture", description=description, attempt=attempt)
            )
        assert not isinstance(caught.value, PermanentProviderError)
        assert caught.value.transient

    output = provider.generate(_request("write-architecture", description=description, attempt=3))
    assert "## Overview" in output.text


def test_it_stops_at_once_when_the_step_is_cancelled():
    request = _request("write-architecture", description="Slow. [offline:delay=5]")
    request.cancelled.set()

    started = time.monotonic()
    with pytest.raises(StepCancelled):
        OfflineProvider().generate(request)

    assert time.monotonic() - started < 1.0


def test_it_stops_a_cancelled_step_with_no_delay():
    request = _request("generate-tasks")
    request.cancelled.set()

    with pytest.raises(StepCancelled):
        OfflineProvider().generate(request)
