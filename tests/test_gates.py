"""skills.gates.evaluate: each gate type passing and failing, and which failures block."""

from __future__ import annotations

import pytest

from skills.gates import ArtifactView, GateSpec, blocking_failures, evaluate, headings

SPEC = ArtifactView(
    "spec.md",
    "document",
    "# Spec: Checkout\n\n## Overview\n\nText.\n\n## Data model ##\n\nMore.\n\n### Risks\n",
)
TASKS = ArtifactView("tasks.json", "json", '{"tasks": []}')


def _one(gate: GateSpec, artifacts=(SPEC, TASKS), metrics=None):
    (result,) = evaluate([gate], list(artifacts), metrics or {})
    return result


def test_it_reads_markdown_headings_of_any_level():
    assert headings(SPEC.content) == {"spec: checkout", "overview", "data model", "risks"}


@pytest.mark.parametrize("pattern", ["spec.md", "*.md", "tasks.*", "*"])
def test_it_passes_file_exists_when_an_artifact_matches(pattern):
    result = _one(GateSpec("file", "file_exists", {"pattern": pattern}))

    assert result.passed
    assert result.message == ""


def test_it_fails_file_exists_when_nothing_matches():
    result = _one(GateSpec("file", "file_exists", {"pattern": "*.pdf"}))

    assert not result.passed
    assert "*.pdf" in result.message


def test_it_accepts_file_as_the_file_exists_pattern():
    assert _one(GateSpec("file", "file_exists", {"file": "spec.md"})).passed
    assert not _one(GateSpec("file", "file_exists", {"file": "prd.md"})).passed


def test_it_passes_content_check_with_every_section_in_any_case():
    gate = GateSpec(
        "sections",
        "content_check",
        {"file": "spec.md", "required_sections": ["Overview", "DATA MODEL", "Risks"]},
    )

    assert _one(gate).passed


def test_it_names_the_missing_sections_in_a_failed_content_check():
    gate = GateSpec(
        "sections",
        "content_check",
        {"file": "spec.md", "required_sections": ["Overview", "Rollout", "Metrics"]},
    )

    result = _one(gate)

    assert not result.passed
    assert "Rollout" in result.message
    assert "Metrics" in result.message
    assert "Overview" not in result.message


def test_it_does_not_count_a_section_name_in_body_text():
    doc = ArtifactView("spec.md", "document", "# Spec\n\nRollout is next week.\n")
    gate = GateSpec("s", "content_check", {"file": "spec.md", "required_sections": ["Rollout"]})

    assert not _one(gate, artifacts=[doc]).passed


def test_it_fails_content_check_when_the_file_was_not_produced():
    gate = GateSpec("s", "content_check", {"file": "prd.md", "required_sections": ["Goals"]})

    result = _one(gate)

    assert not result.passed
    assert "prd.md was not produced" in result.message


def test_it_prefixes_the_failure_message():
    gate = GateSpec(
        "s",
        "content_check",
        {"file": "spec.md", "required_sections": ["Rollout"]},
        failure_message="The spec is incomplete.",
    )

    result = _one(gate)

    assert result.message.startswith("The spec is incomplete. (")
    assert "Rollout" in result.message


@pytest.mark.parametrize(
    "config",
    [{"name": "tasks.json"}, {"kind": "json"}, {"name": "spec.md", "kind": "document"}, {}],
)
def test_it_passes_artifact_exists(config):
    assert _one(GateSpec("a", "artifact_exists", config)).passed


@pytest.mark.parametrize(
    ("config", "wanted"),
    [
        ({"name": "prd.md"}, "name=prd.md"),
        ({"kind": "pr"}, "kind=pr"),
        # Both must hold for the same artifact.
        ({"name": "spec.md", "kind": "json"}, "name=spec.md kind=json"),
    ],
)
def test_it_fails_artifact_exists(config, wanted):
    result = _one(GateSpec("a", "artifact_exists", config))

    assert not result.passed
    assert wanted in result.message


def test_it_fails_artifact_exists_with_no_artifacts():
    assert not _one(GateSpec("a", "artifact_exists", {}), artifacts=[]).passed


@pytest.mark.parametrize(
    ("operator", "passing", "failing"),
    [
        (">=", [70, 71], [69.9]),
        (">", [70.1], [70, 69]),
        ("<=", [70, 3], [70.5]),
        ("<", [69], [70, 71]),
        ("==", [70], [69, 71]),
        ("!=", [69, 71], [70]),
    ],
)
def test_it_compares_metrics_with_each_operator(operator, passing, failing):
    gate = GateSpec(
        "m", "metric_threshold", {"metric": "jury_score", "operator": operator, "threshold": 70}
    )

    for value in passing:
        assert _one(gate, metrics={"jury_score": value}).passed, (operator, value)
    for value in failing:
        result = _one(gate, metrics={"jury_score": value})
        assert not result.passed, (operator, value)
        assert f"needs {operator} 70" in result.message


def test_it_defaults_the_operator_to_at_least():
    gate = GateSpec("m", "metric_threshold", {"metric": "coverage", "threshold": 80})

    assert _one(gate, metrics={"coverage": 80}).passed
    assert not _one(gate, metrics={"coverage": 79}).passed


def test_it_fails_a_metric_that_was_not_reported():
    gate = GateSpec("m", "metric_threshold", {"metric": "jury_score", "threshold": 70})

    result = _one(gate, metrics={"other": 99})

    assert not result.passed
    assert "jury_score was not reported" in result.message


def test_it_fails_an_unknown_operator():
    gate = GateSpec("m", "metric_threshold", {"metric": "x", "operator": "~", "threshold": 1})

    result = _one(gate, metrics={"x": 1})

    assert not result.passed
    assert "unknown operator" in result.message


def test_it_fails_an_unknown_gate_type():
    result = _one(GateSpec("weird", "vibes_check", {}))

    assert not result.passed
    assert "unknown gate type" in result.message


def test_it_returns_one_result_per_gate_in_order():
    gates = [
        GateSpec("first", "file_exists", {"pattern": "spec.md"}),
        GateSpec("second", "file_exists", {"pattern": "nope"}),
    ]

    results = evaluate(gates, [SPEC], {})

    assert [(r.name, r.passed) for r in results] == [("first", True), ("second", False)]
    assert results[1].as_dict() == {
        "name": "second",
        "passed": False,
        "required": True,
        "message": results[1].message,
    }


def test_it_blocks_only_on_required_failures():
    gates = [
        GateSpec("required passes", "file_exists", {"pattern": "spec.md"}),
        GateSpec("required fails", "file_exists", {"pattern": "prd.md"}),
        GateSpec("optional fails", "file_exists", {"pattern": "notes.md"}, required=False),
        GateSpec("optional passes", "file_exists", {"pattern": "*.json"}, required=False),
    ]

    results = evaluate(gates, [SPEC, TASKS], {})

    assert [r.name for r in blocking_failures(results)] == ["required fails"]
    optional = next(r for r in results if r.name == "optional fails")
    assert not optional.passed
    assert optional.required is False


def test_it_has_no_blocking_failures_when_only_optional_gates_fail():
    gates = [GateSpec("optional", "file_exists", {"pattern": "x"}, required=False)]

    assert blocking_failures(evaluate(gates, [], {})) == []
