"""The stage templates a workspace is created from. Keys are unique within a workspace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    key: str
    name: str
    is_live: bool = False
    is_done: bool = False
    # Delivery: building, testing, shipping. Unfinished dependencies hold a card out of these
    # stages' work; planning (everything before) never waits for them.
    is_delivery: bool = False


TEMPLATES: dict[str, list[StageSpec]] = {
    "delivery": [
        StageSpec("idea", "Idea"),
        StageSpec("spec", "Spec"),
        StageSpec("spec-review", "Spec review"),
        StageSpec("building", "Building", is_delivery=True),
        StageSpec("qa", "QA", is_delivery=True),
        StageSpec("final-review", "Final review", is_delivery=True),
        StageSpec("done", "Done", is_done=True, is_delivery=True),
        StageSpec("live", "Live", is_live=True, is_delivery=True),
    ],
    "product": [
        StageSpec("inbox", "Inbox"),
        StageSpec("discovery", "Discovery"),
        StageSpec("prd", "PRD"),
        StageSpec("design", "Design"),
        StageSpec("prototype", "Prototype"),
        StageSpec("validate", "Validate"),
        StageSpec("tickets", "Tickets"),
        StageSpec("build", "Build", is_delivery=True),
        StageSpec("alpha", "Alpha", is_delivery=True),
        StageSpec("beta", "Beta", is_delivery=True),
        StageSpec("ga", "GA", is_live=True, is_delivery=True),
    ],
    "quick": [
        StageSpec("idea", "Idea"),
        StageSpec("architecture", "Architecture"),
        StageSpec("tasks", "Tasks"),
        StageSpec("done", "Done", is_done=True, is_delivery=True),
    ],
}

# Generated tasks and stories live on a second board. Its keys cannot reuse the feature board's
# "done" (keys are unique per workspace), so the last column is "Done" shown over key "finished".
WORK_BOARD: list[StageSpec] = [
    StageSpec("todo", "To do"),
    StageSpec("doing", "Doing", is_delivery=True),
    StageSpec("review", "Review", is_delivery=True),
    StageSpec("finished", "Done", is_done=True, is_delivery=True),
]

# Where an automatic pipeline halts for people unless the workspace says otherwise:
# just before building, as DESIGN.md puts it.
DEFAULT_STOP_STAGE: dict[str, str] = {
    "delivery": "building",
    "product": "build",
    "quick": "done",
}

# Which stages each kind of card runs through (Workspace.kind_stages), when a template's kind
# should not walk the whole board. A story's pipeline writes its acceptance criteria and its
# subtasks, then stops for people: on product the Tickets stage does both; on delivery the
# Spec (with its acceptance criteria) and Spec review (which makes the subtasks); quick has no
# acceptance-criteria stage, so a story there runs Tasks only. Kinds not named run every stage.
DEFAULT_KIND_STAGES: dict[str, dict[str, list[str]]] = {
    "delivery": {"story": ["spec", "spec-review"]},
    "product": {"story": ["tickets"]},
    "quick": {"story": ["tasks"]},
}
