"""The default provider: deterministic, offline and fast, with real output for every built-in skill.

Documents carry exactly the sections their gates check, task lists are valid JSON with
dependencies, and jury scores are numbers, so the whole product works with no network.

Directives in a card's description let people (and tests) rehearse failures on purpose:
``[offline:fail=permanent]``, ``[offline:fail=transient:2]`` (the first 2 attempts fail),
``[offline:delay=1.5]`` (seconds per step), ``[offline:score=40]``, ``[offline:omit=Risks]``.
Any directive can target one skill of a recipe: ``[offline:fail=permanent@generate-tasks]``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from django.conf import settings

from pipeline.providers.base import (
    PermanentProviderError,
    StepCancelled,
    StepOutput,
    StepRequest,
    TransientProviderError,
    Usage,
)

_DIRECTIVE = re.compile(r"\[offline:(\w+)=([^\]]*)\]")

_TASK_TEMPLATES = [
    ("Model the data for {t}", "Tables, constraints and migrations that {t} needs.", []),
    ("Build the service layer for {t}", "Actions and validation behind {t}.", [0]),
    ("Expose {t} in the API", "Endpoints, permissions and error answers for {t}.", [1]),
    ("Build the UI for {t}", "Pages and components for {t}, phone-width included.", [2]),
    ("Test {t} end to end", "Browser and integration tests that prove {t} works.", [2, 3]),
    ("Document {t}", "README and help text for {t}.", [3]),
]

# An epic breaks into user stories, a story into subtasks.
_STORY_TEMPLATES = [
    ("As a new user, I can start using {t}", "The first-run path of {t}, end to end.", []),
    ("As a user, I can do the main job of {t}", "The everyday flow {t} exists for.", [0]),
    ("As a user, I can fix my mistakes in {t}", "Editing, undo and clear errors in {t}.", [1]),
    ("As an admin, I can configure {t}", "Settings and permissions for {t}.", [0]),
    ("As a user, I get notified about {t}", "Emails and in-app notices from {t}.", [1]),
    ("As a support agent, I can see what happened in {t}", "History and audit for {t}.", [1]),
]
_SUBTASK_TEMPLATES = [
    ("Subtask: agree the acceptance criteria of {t}", "Examples that prove {t} is done.", []),
    ("Subtask: implement {t}", "The code change behind {t}.", [0]),
    ("Subtask: test {t}", "Automated tests for each acceptance criterion of {t}.", [1]),
    ("Subtask: review and demo {t}", "Code review and a demo of {t} to the team.", [2]),
    ("Subtask: handle the edge cases of {t}", "Empty, slow and concurrent cases of {t}.", [1]),
    ("Subtask: document {t}", "Help text and release notes for {t}.", [1]),
]
_TEMPLATES_BY_KIND = {"epic": _STORY_TEMPLATES, "story": _SUBTASK_TEMPLATES}


def directives(text: str, skill_slug: str = "") -> dict[str, str]:
    """The directives in `text` that apply to `skill_slug` (untargeted ones apply to all)."""
    found: dict[str, str] = {}
    for key, raw in _DIRECTIVE.findall(text):
        value, _, target = raw.strip().partition("@")
        if not target or target == skill_slug:
            found[key] = value
    return found


def _seed(*parts: str) -> int:
    return int(hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8], 16)


_STOPWORDS = frozenset({
    "about", "after", "also", "been", "from", "have", "into", "just", "more", "only", "over",
    "some", "such", "than", "that", "their", "them", "then", "they", "this", "very", "what",
    "when", "which", "while", "with", "without", "would", "your",
})  # fmt: skip


def _sentences(title: str, section: str, description: str) -> str:
    words: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", _DIRECTIVE.sub("", description)):
        if word.lower() not in _STOPWORDS and word.lower() not in {w.lower() for w in words}:
            words.append(word)
    focus = ", ".join(words[:3]) + (f" and {words[3]}" if len(words) > 3 else "")
    return (
        f"For **{title}**, the {section.lower()} centres on {focus or title.lower()}.\n\n"
        f"- What a user of {title} needs from this part, stated so it can be checked.\n"
        f"- The edge cases: empty input, concurrent edits, slow networks.\n"
        f"- How we will know it works: a test or a metric for each point above.\n"
    )


_CRITERIA = [
    ("a user who has never used {t}", "they open it", "they are guided to its first useful step"),
    ("a user in the middle of {t}", "they submit valid input", "the result is saved and shown"),
    (
        "a user in {t}",
        "they submit invalid input",
        "nothing is saved and the error says what to fix",
    ),
    ("two people using {t} at once", "both save", "neither loses work and both see the result"),
    ("a phone-sized screen", "a user opens {t}", "every action is reachable without zooming"),
    ("a slow connection", "a user waits on {t}", "they see progress and can leave safely"),
]


def _acceptance_criteria(title: str) -> str:
    """3 to 6 numbered Given / When / Then criteria, stable for a given title."""
    count = 3 + _seed(title, "criteria") % 4
    lines = [
        f"{i}. Given {given.format(t=title)}, when {when.format(t=title)}, "
        f"then {then.format(t=title)}."
        for i, (given, when, then) in enumerate(_CRITERIA[:count], start=1)
    ]
    return "\n".join(lines) + "\n"


class OfflineProvider:
    name = "offline"

    def is_instant(self, request: StepRequest) -> bool:
        """No simulated latency: the executor need not show the step's log before it ends."""
        found = directives(request.inputs.get("description", ""), request.skill_slug)
        delay = float(found.get("delay", settings.RUNWAY_OFFLINE_DELAY_SECONDS))
        return delay <= 0 and not float(settings.RUNWAY_OFFLINE_JITTER_SECONDS)

    def generate(self, request: StepRequest) -> StepOutput:
        found = directives(request.inputs.get("description", ""), request.skill_slug)
        self._wait(request, found)
        self._maybe_fail(request, found)
        title = request.inputs.get("title", "Untitled")
        if request.output == "tasks":
            output = self._tasks(request, title)
        elif request.output == "score":
            output = self._score(request, title, found)
        else:
            output = StepOutput(text=self._document(request, title, found))
        output.usage = Usage(
            input_tokens=len(request.prompt) // 4, output_tokens=len(output.text) // 4
        )
        return output

    def _wait(self, request: StepRequest, found: dict[str, str]) -> None:
        delay = float(found.get("delay", settings.RUNWAY_OFFLINE_DELAY_SECONDS))
        jitter = float(settings.RUNWAY_OFFLINE_JITTER_SECONDS)
        if jitter:
            delay += random.uniform(0, jitter)  # noqa: S311 - simulated latency, not security
        # Waiting on the cancel event (not sleeping) lets Stop interrupt a slow step at once.
        if delay > 0 and request.cancelled.wait(delay):
            raise StepCancelled
        if request.cancelled.is_set():
            raise StepCancelled

    def _maybe_fail(self, request: StepRequest, found: dict[str, str]) -> None:
        fail = found.get("fail", "")
        if fail == "permanent":
            raise PermanentProviderError(
                "The offline provider was told to fail ([offline:fail=permanent] in the "
                "description). Remove the directive and retry."
            )
        if fail.startswith("transient"):
            times = int(fail.partition(":")[2] or 1)
            if request.attempt <= times:
                raise TransientProviderError(
                    f"Simulated overload (attempt {request.attempt} of the first {times} fail)",
                    retry_after=0,
                )

    def _document(self, request: StepRequest, title: str, found: dict[str, str]) -> str:
        omit = {s.strip().lower() for s in found.get("omit", "").split(",") if s.strip()}
        heading = request.artifact_name.removesuffix(".md").replace("-", " ").capitalize()
        parts = [f"# {heading}: {title}\n"]
        for section in request.sections:
            if section.lower() in omit:
                continue
            body = _sentences(title, section, request.inputs.get("description", ""))
            if section == "Verdict":
                body = "APPROVED. " + body
            elif section == "Acceptance criteria":
                body = _acceptance_criteria(title)
            parts.append(f"## {section}\n\n{body}")
        return "\n".join(parts)

    def _tasks(self, request: StepRequest, title: str) -> StepOutput:
        """A task list shaped by the card's kind: an epic's items read as stories, a story's
        as its subtasks, anything else's as implementation tasks."""
        templates = _TEMPLATES_BY_KIND.get(request.inputs.get("kind", ""), _TASK_TEMPLATES)
        count = 3 + _seed(title) % 4  # 3 to 6 items, stable for a given title
        tasks: list[dict[str, Any]] = []
        for name, description, depends in templates[:count]:
            tasks.append(
                {
                    "title": name.format(t=title)[:200],
                    "description": description.format(t=title),
                    "depends_on": [d for d in depends if d < count],
                }
            )
        data = {"tasks": tasks}
        return StepOutput(text=json.dumps(data, indent=2), data=data)

    def _score(self, request: StepRequest, title: str, found: dict[str, str]) -> StepOutput:
        score = float(found.get("score", 70 + _seed(title, "jury") % 26))
        report = self._document(request, title, found)
        report = report.replace("## Score\n\n", f"## Score\n\n**{score:.0f} / 100**\n\n", 1)
        return StepOutput(text=report, data={"score": score}, metrics={"jury_score": score})
