"""Which runs a bulk action acts on: the operator's filter, checked once for the page, the API
and the CLI alike, and the runs of one workspace it matches.

Each action only ever matches the runs it can act on: a retry the failed or cancelled runs that
are still their card's last run (not retried since), a cancel the active runs, a rescue the
running ones. A status outside those is refused rather than silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, time
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from features.models import Workspace
from pipeline.models import BulkAction, Run
from pipeline.providers import provider_names

Status = Run.Status
Action = BulkAction.Action

# What each action can act on.
ELIGIBLE: dict[str, tuple[str, ...]] = {
    Action.RETRY: (Status.FAILED, Status.CANCELLED),
    Action.CANCEL: tuple(Run.ACTIVE_STATUSES),
    Action.RESCUE: (Status.RUNNING,),
}
FIELDS = (
    "status",
    "stage",
    "error_kind",
    "provider",
    "created_after",
    "created_before",
    "finished_after",
    "finished_before",
)
SAMPLE_SIZE = 10
MAX_TEXT = 100


class BadFilter(ValueError):
    """A filter (or action) the operator must fix; `field` names it, the message says how."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RunFilter:
    """A checked filter: "" (or None for times) means "any". Times are aware datetimes."""

    status: str = ""
    stage: str = ""
    error_kind: str = ""
    provider: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None

    def as_dict(self) -> dict[str, str]:
        """The fields that are set, as JSON-ready strings (ISO 8601 for times)."""
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if isinstance(value, datetime):
                out[name] = value.isoformat()
            elif value:
                out[name] = str(value)
        return out

    def describe(self) -> str:
        """One line for people: "status failed, provider anthropic" or "every run"."""
        parts = [f"{name.replace('_', ' ')} {value}" for name, value in self.as_dict().items()]
        return ", ".join(parts) or "no filter"


def parse_action(value: object) -> str:
    if value not in Action.values:
        raise BadFilter("action", f"Choose an action: {', '.join(Action.values)}.")
    return str(value)


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadFilter(name, f"{name}: give it as text.")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise BadFilter(name, f"{name}: at most {MAX_TEXT} characters of text.")
    return value.strip()


def _when(raw: Mapping[str, Any], name: str) -> datetime | None:
    text = _text(raw, name)
    if not text:
        return None
    hint = f"{name}: a date or time like 2026-11-30 or 2026-11-30T14:00 (got {text!r})."
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is None:
                raise BadFilter(name, hint)
            moment = datetime.combine(day, time.min)
    except ValueError:  # well formed but impossible, such as 2026-02-30
        raise BadFilter(name, hint) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _choice(raw: Mapping[str, Any], name: str, allowed: list[str]) -> str:
    value = _text(raw, name)
    if value and value not in allowed:
        raise BadFilter(name, f"Unknown {name} {value!r}; choose one of: {', '.join(allowed)}.")
    return value


def parse_filter(raw: Mapping[str, Any], workspace: Workspace, action: str) -> RunFilter:
    """Check the operator's filter for `action` in `workspace`. Values are strings ("" or
    missing: any). Raises BadFilter naming the first field to fix."""
    eligible = list(ELIGIBLE[action])
    status = _choice(raw, "status", list(Status.values))
    if status and status not in eligible:
        raise BadFilter(
            "status",
            f"{action.capitalize()} acts on {' or '.join(eligible)} runs, not {status} ones.",
        )
    stages = list(workspace.stages.order_by("board", "position").values_list("key", flat=True))
    kinds = [k for k in Run.ErrorKind.values if k]
    providers = sorted(
        {
            *provider_names(),
            *Run.objects.filter(workspace=workspace).values_list("provider", flat=True),
        }
        - {""}
    )
    found = RunFilter(
        status=status,
        stage=_choice(raw, "stage", stages),
        error_kind=_choice(raw, "error_kind", kinds),
        provider=_choice(raw, "provider", providers),
        created_after=_when(raw, "created_after"),
        created_before=_when(raw, "created_before"),
        finished_after=_when(raw, "finished_after"),
        finished_before=_when(raw, "finished_before"),
    )
    for start, end in (("created_after", "created_before"), ("finished_after", "finished_before")):
        after, before = getattr(found, start), getattr(found, end)
        if after is not None and before is not None and after >= before:
            raise BadFilter(end, f"{end} must be later than {start}.")
    return found


def matching(workspace: Workspace, action: str, run_filter: RunFilter) -> QuerySet[Run]:
    """The workspace's runs `action` would act on under `run_filter`, oldest first.

    Time bounds: *_after inclusive, *_before exclusive. A run with no finish time never
    matches a finished_* bound.
    """
    runs = Run.objects.filter(workspace=workspace, status__in=ELIGIBLE[action])
    if action == Action.RETRY:
        # Only a card's last run: one retried since (it has a child) or followed by a newer
        # launch is history, and the engine would refuse it.
        later = Run.objects.filter(feature_id=OuterRef("feature_id")).filter(
            Q(created_at__gt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
        )
        runs = runs.exclude(Exists(later))
    f = run_filter
    conditions = {
        "status": f.status,
        "stage__key": f.stage,
        "error_kind": f.error_kind,
        "provider": f.provider,
        "created_at__gte": f.created_after,
        "created_at__lt": f.created_before,
        "finished_at__gte": f.finished_after,
        "finished_at__lt": f.finished_before,
    }
    runs = runs.filter(**{k: v for k, v in conditions.items() if v})
    return runs.order_by("created_at", "id")


@dataclass(frozen=True)
class Preview:
    """The dry run: how many runs match and the newest few of them."""

    action: str
    filter: RunFilter
    count: int
    sample: list[Run]


def preview(workspace: Workspace, action: str, run_filter: RunFilter) -> Preview:
    runs = matching(workspace, action, run_filter)
    sample = list(
        runs.select_related("feature", "stage")
        .defer("result", "skill_versions", "feature__description", "feature__health_check")
        .order_by("-created_at", "-id")[:SAMPLE_SIZE]
    )
    count = len(sample) if len(sample) < SAMPLE_SIZE else runs.count()
    return Preview(action=action, filter=run_filter, count=count, sample=sample)
