"""Structured outputs shared by the remote providers: their JSON schemas, validation and the
StepOutput each becomes.

Task lists: ``{"tasks": [{"title", "description", "depends_on": [earlier indexes]}]}``.
Jury scores: ``{"score": 0..100, "report": markdown}``. A reply that does not validate gets one
repair attempt (the error goes back to the model); the message here is what it is told.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from pipeline.providers.base import StepOutput, Usage


class Task(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    depends_on: list[int] = Field(default_factory=list)


class TaskList(BaseModel):
    tasks: list[Task] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _dependencies_point_back(self) -> TaskList:
        for index, task in enumerate(self.tasks):
            for dep in task.depends_on:
                if not 0 <= dep < index:
                    raise ValueError(
                        f"tasks[{index}].depends_on contains {dep}: it must list indexes of "
                        f"earlier tasks (0 to {index - 1}), counting from 0"
                    )
        return self


class JuryScore(BaseModel):
    score: float = Field(ge=0, le=100)
    report: str = Field(min_length=1)


MODELS: dict[str, type[BaseModel]] = {"tasks": TaskList, "score": JuryScore}
TOOL_NAMES = {"tasks": "submit_tasks", "score": "submit_score"}
TOOL_DESCRIPTIONS = {
    "tasks": "Submit the implementation tasks; depends_on lists indexes of earlier tasks.",
    "score": "Submit the jury's score from 0 to 100 and its markdown report.",
}


class InvalidOutput(Exception):
    """The model's structured answer does not satisfy the schema (the message says why)."""


def is_structured(output: str) -> bool:
    return output in MODELS


def schema(output: str) -> dict[str, Any]:
    return MODELS[output].model_json_schema()


def validate(output: str, raw: object) -> dict[str, Any]:
    """The validated data as plain JSON, or InvalidOutput with an error a model can act on."""
    if not isinstance(raw, dict):
        raise InvalidOutput(f"expected a JSON object, got {type(raw).__name__}")
    try:
        parsed = MODELS[output].model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise InvalidOutput(problems) from None
    return parsed.model_dump(mode="json")


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_json_text(text: str) -> object:
    """JSON from a text answer: bare, or in a ```json fence, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    error = "empty answer"
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            error = f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    raise InvalidOutput(error)


def to_output(output: str, data: dict[str, Any], usage: Usage) -> StepOutput:
    """The StepOutput the engine expects, shaped like the offline provider's."""
    if output == "score":
        score = float(data["score"])
        return StepOutput(
            text=str(data["report"]),
            data={"score": score},
            metrics={"jury_score": score},
            usage=usage,
        )
    return StepOutput(text=json.dumps(data, indent=2), data=data, usage=usage)


def instructions(output: str) -> str:
    """What to append to a prompt for providers without tool use (JSON mode, CLI)."""
    return (
        "\n\nAnswer with one JSON object only, no prose, matching this JSON schema:\n"
        + json.dumps(schema(output))
    )


def repair_prompt(output: str, error: str) -> str:
    return (
        f"Your previous answer was rejected: {error}. Answer again with one JSON object that "
        f"satisfies the schema{'' if output not in MODELS else ' exactly'}."
    )
