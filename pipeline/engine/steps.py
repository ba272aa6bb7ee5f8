"""What one recipe step produced, as the executor hands it to the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepResult:
    """What one recipe step produced, as the executor hands it to completion."""

    skill: str
    version: int
    output: str
    artifact_name: str
    text: str
    data: dict[str, Any]
    metrics: dict[str, float]
    # The model stopped at its output limit: the document may be cut short.
    truncated: bool = False
    # Which recipe step made it (executor.step_fingerprint): a saved result is reused on a
    # resume only by the same step. Empty in results saved before it existed.
    fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "skill": self.skill,
            "version": self.version,
            "output": self.output,
            "artifact": self.artifact_name,
            "text": self.text,
            "data": self.data,
            "metrics": self.metrics,
            "truncated": self.truncated,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StepResult:
        return cls(
            skill=raw["skill"],
            version=raw["version"],
            output=raw["output"],
            artifact_name=raw["artifact"],
            text=raw["text"],
            data=raw.get("data") or {},
            metrics=raw.get("metrics") or {},
            truncated=bool(raw.get("truncated")),
            fingerprint=str(raw.get("fingerprint") or ""),
        )
