"""The stage templates a workspace is created from. Keys are unique within a workspace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    key: str
    name: str
    is_live: bool = False
    is_done: bool = False


TEMPLATES: dict[str, list[StageSpec]] = {
    "delivery": [
        StageSpec("idea", "Idea"),
        StageSpec("spec", "Spec"),
        StageSpec("spec-review", "Spec review"),
        StageSpec("building", "Building"),
        StageSpec("qa", "QA"),
        StageSpec("final-review", "Final review"),
        StageSpec("done", "Done", is_done=True),
        StageSpec("live", "Live", is_live=True),
    ],
    "product": [
        StageSpec("inbox", "Inbox"),
        StageSpec("discovery", "Discovery"),
        StageSpec("prd", "PRD"),
        StageSpec("design", "Design"),
        StageSpec("prototype", "Prototype"),
        StageSpec("validate", "Validate"),
        StageSpec("tickets", "Tickets"),
        StageSpec("build", "Build"),
        StageSpec("alpha", "Alpha"),
        StageSpec("beta", "Beta"),
        StageSpec("ga", "GA", is_live=True),
    ],
    "quick": [
        StageSpec("idea", "Idea"),
        StageSpec("architecture", "Architecture"),
        StageSpec("tasks", "Tasks"),
        StageSpec("done", "Done", is_done=True),
    ],
}

# Generated tasks and stories live on a second board. Its keys cannot reuse the feature board's
# "done" (keys are unique per workspace), so the last column is "Done" shown over key "finished".
WORK_BOARD: list[StageSpec] = [
    StageSpec("todo", "To do"),
    StageSpec("doing", "Doing"),
    StageSpec("review", "Review"),
    StageSpec("finished", "Done", is_done=True),
]

# Where an automatic pipeline halts for people unless the workspace says otherwise:
# just before building, as DESIGN.md puts it.
DEFAULT_STOP_STAGE: dict[str, str] = {
    "delivery": "building",
    "product": "build",
    "quick": "done",
}
