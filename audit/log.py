"""Writing to the workspace audit log: the one public entry point is `record`.

Call it at the door where the person is known (a view, an API endpoint, a CLI command under
`--as`, an admin action), after the change was validated, ideally inside the same transaction
as the change so a rolled-back change leaves no entry.

    from audit.log import Target, changed, record

    record(
        workspace=feature.workspace,
        actor=request.user,
        action="card.move",
        target=feature,                       # a model instance, a Target, or None
        changes={"stage": {"before": "spec", "after": "qa"}},
        source="web",
    )

Shapes:
- `action`: a dotted lower-case slug "<thing>.<verb>", at most 40 characters. In use:
  run.launch, run.stop (a cancel too), run.retry (a rerun too), run.decision ({"decision":
  "start" | "accept" | "reject"}), run.rescue, card.move, recipe.change, skill.vet,
  budget.change, settings.change, workspace.create, member.add, member.role, member.remove,
  invitation.create, invitation.accept, invitation.revoke. New kinds need no registration:
  the audit page lists the actions a workspace's log holds.
- `target`: a model instance (type = its model name, e.g. "feature", "run"; id = its pk;
  label = str(instance)), a `Target(type, id, label)` for anything else, or None.
- `changes`: a JSON object. For field edits use {"field": {"before": x, "after": y}} (see
  `changed`); for events, whatever describes them ({"stage": "spec", "provider": "offline"}).
  Decimals, dates and UUIDs are stored as strings (DjangoJSONEncoder).
- `source`: "web", "api", "cli", "admin", "email" or "system"; None (the default) takes the
  door in context (see audit.context), so code below the door need not know it.
- `actor`: the user who acted; None or an anonymous user for the system (label "system").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models

from audit.context import current_source
from audit.models import AuditEntry

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

_ACTION = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
_SOURCES = frozenset(AuditEntry.Source.values)


@dataclass(frozen=True)
class Target:
    """What an action was done to, when it is not (only) a model instance."""

    type: str
    id: str | int
    label: str = ""


def _clip(text: str, field: str) -> str:
    max_length = getattr(AuditEntry._meta.get_field(field), "max_length", None) or len(text)
    return text if len(text) <= max_length else text[: max_length - 1] + "…"


def record(
    *,
    workspace: models.Model,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    target: models.Model | Target | None = None,
    changes: Mapping[str, Any] | None = None,
    source: str | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Append one entry to `workspace`'s audit log and return it.

    Raises ValueError for an action that is not a dotted slug, an unknown source or changes
    that are not a mapping: these are programming errors, never user input. Without `source`
    the entry takes the door in context (`audit.context.current_source`: "api" under /api/,
    "admin" under /admin/, "cli" in the CLI, else "web"). `actor_label` overrides the name
    shown for the actor (default: the username, or "system" without a person).
    """
    source = source or current_source()
    if len(action) > 40 or not _ACTION.match(action):
        raise ValueError(f"Audit action must be a dotted slug like 'run.launch', not {action!r}.")
    if source not in _SOURCES:
        raise ValueError(f"Audit source must be one of {sorted(_SOURCES)}, not {source!r}.")
    if changes is not None and not isinstance(changes, Mapping):
        raise ValueError("Audit changes must be a mapping (a JSON object).")
    if isinstance(target, Target):
        target_type, target_id, target_label = target.type, str(target.id), target.label
    elif target is not None:
        target_type, target_id, target_label = (
            target._meta.model_name or "",
            str(target.pk),
            str(target),
        )
    else:
        target_type = target_id = target_label = ""
    is_person = actor is not None and actor.is_authenticated
    return AuditEntry.objects.create(
        # By id: the log knows workspaces and users only as foreign keys (it imports no app).
        workspace_id=workspace.pk,
        actor_id=actor.pk if is_person else None,  # type: ignore[union-attr]
        actor_label=_clip(
            actor_label or (actor.get_username() if is_person else "system"),  # type: ignore[union-attr]
            "actor_label",
        ),
        action=action,
        target_type=_clip(target_type, "target_type"),
        target_id=_clip(target_id, "target_id"),
        target_label=_clip(target_label, "target_label"),
        changes=dict(changes or {}),
        source=source,
    )


def changed(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """{"field": {"before": b, "after": a}} for each field whose value differs.

    `fields` limits the comparison (default: every key in either mapping). Use it to build
    `changes` from two snapshots, e.g. `changed(model_to_dict(old), form.cleaned_data)`.
    """
    names = list(fields) if fields is not None else sorted(set(before) | set(after))
    return {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in names
        if before.get(name) != after.get(name)
    }
