"""What the commands people issue write to the workspace audit log (audit.log.record).

Called inside each command's transaction, so a refused or rolled-back command leaves no entry,
and only for a person's command (`user` not None, or the CLI's operator without --as): the
engine's own launches and moves are not audited. The door (web, api, cli, admin) comes from
audit.context.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from audit.context import current_source, summarised
from audit.log import Target, record
from features.models import Feature, Workspace
from pipeline.models import Batch, Run


def card(feature: Feature) -> Target:
    return Target("feature", feature.pk, f"#{feature.pk} {feature.title}")


def run_target(run: Run, feature: Feature | None = None) -> Target:
    title = feature.title if feature is not None else run.feature.title
    return Target("run", run.pk, f"Run #{run.pk} of “{title}”")


def batch_target(batch: Batch) -> Target:
    return Target("batch", batch.pk, f"Batch #{batch.pk} ({batch.get_kind_display()})")


def by_person(
    user: User | None,
    workspace_id: int,
    action: str,
    target: Target,
    changes: dict[str, Any] | None = None,
) -> None:
    if summarised():
        return  # a bulk action: its own entry covers every run it touched
    # The CLI without --as is an operator at a shell: a person, though not a user.
    operator = user is None and current_source() == "cli"
    if user is None and not operator:
        return
    record(
        workspace=Workspace(pk=workspace_id),
        actor=user,
        action=action,
        target=target,
        changes=changes,
        actor_label="operator (CLI)" if operator else None,
    )
