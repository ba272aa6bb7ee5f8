"""Gate evaluation: pure functions over a run's artifacts and metrics (no database)."""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class GateSpec:
    name: str
    type: str
    config: Mapping[str, Any]
    required: bool = True
    failure_message: str = ""


@dataclass(frozen=True)
class ArtifactView:
    name: str
    kind: str
    content: str


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    required: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "required": self.required,
            "message": self.message,
        }


def headings(markdown: str) -> set[str]:
    return {h.strip().lower() for h in _HEADING.findall(markdown)}


def _file_exists(config: Mapping[str, Any], artifacts: Sequence[ArtifactView], _: Any) -> str:
    pattern = str(config.get("pattern") or config.get("file") or "*")
    if any(fnmatch.fnmatch(a.name, pattern) for a in artifacts):
        return ""
    return f"no artifact matches {pattern!r}"


def _content_check(config: Mapping[str, Any], artifacts: Sequence[ArtifactView], _: Any) -> str:
    name = str(config.get("file", ""))
    artifact = next((a for a in artifacts if a.name == name), None)
    if artifact is None:
        return f"{name} was not produced"
    present = headings(artifact.content)
    missing = [s for s in config.get("required_sections", []) if s.lower() not in present]
    if missing:
        return f"{name} is missing section(s): {', '.join(missing)}"
    return ""


def _artifact_exists(config: Mapping[str, Any], artifacts: Sequence[ArtifactView], _: Any) -> str:
    name, kind = config.get("name"), config.get("kind")
    for artifact in artifacts:
        if (name is None or artifact.name == name) and (kind is None or artifact.kind == kind):
            return ""
    wanted = " ".join(f"{k}={v}" for k, v in (("name", name), ("kind", kind)) if v)
    return f"no artifact with {wanted or 'any name'}"


def _metric_threshold(
    config: Mapping[str, Any], _: Sequence[ArtifactView], metrics: Mapping[str, float]
) -> str:
    metric = str(config.get("metric", ""))
    op = str(config.get("operator", ">="))
    if op not in _OPERATORS:
        return f"unknown operator {op!r}"
    threshold = float(config.get("threshold", 0))
    if metric not in metrics:
        return f"metric {metric} was not reported"
    value = metrics[metric]
    if _OPERATORS[op](value, threshold):
        return ""
    return f"{metric} = {value:g}, needs {op} {threshold:g}"


_CHECKS: dict[
    str, Callable[[Mapping[str, Any], Sequence[ArtifactView], Mapping[str, float]], str]
] = {
    "file_exists": _file_exists,
    "content_check": _content_check,
    "artifact_exists": _artifact_exists,
    "metric_threshold": _metric_threshold,
}


def evaluate(
    gates: Sequence[GateSpec], artifacts: Sequence[ArtifactView], metrics: Mapping[str, float]
) -> list[GateResult]:
    results = []
    for gate in gates:
        check = _CHECKS.get(gate.type)
        problem = (
            f"unknown gate type {gate.type!r}"
            if check is None
            else check(gate.config, artifacts, metrics)
        )
        message = ""
        if problem:
            message = f"{gate.failure_message} ({problem})" if gate.failure_message else problem
        results.append(GateResult(gate.name, not problem, gate.required, message))
    return results


def blocking_failures(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if r.required and not r.passed]
