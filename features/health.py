"""Health checks of live cards: an HTTP status or an operator-defined command's exit code.

A card's ``health_check`` is one of::

    {"type": "http", "url": "https://shop.example/health", "expect": "status:200", "every": "5m"}
    {"type": "command", "command": "disk", "args": ["/var"], "expect": "exit_code:0",
     "every": "daily"}

HTTP checks go through features.outbound (no private addresses unless the operator allows
them, pinned connections, redirects re-checked, time and size caps, "Unreachable" rather than
socket errors). A command check names one of the commands the server's operator defined
(features.health_commands); only workspace owners and admins choose them.

Every run is kept as a HealthCheckResult. A failing check opens ONE incident card linked to the
feature (reused while it is open) and hands it, in the same transaction, to the incident
launcher the pipeline layer registers (``set_incident_launcher``): the card domain knows no
runner, and the runner launches incidents under the same automation rules as any launch. The
first passing check after a failure notes the recovery on that incident. Beat's sweep sends due
checks to their own queue (features.health_schedule).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from features import events, health_commands, health_schedule, notices, outbound
from features.actions import FINISHED, FeatureError, do_create_feature
from features.models import Feature, HealthCheckResult, Membership

logger = logging.getLogger(__name__)

TYPES = ("http", "command")
_EXPECT = {
    "http": re.compile(r"^status:([1-5][0-9]{2})$"),
    "command": re.compile(r"^exit_code:(\d{1,3})$"),
}
_DEFAULT_EXPECT = {"http": "status:200", "command": "exit_code:0"}
_TARGET = {"http": "url", "command": "command"}
_KEYS = {"type", "expect", "every", "timeout"}
_ARGS_MAX = 10
_NAMED_EVERY = {"hourly": 3600, "daily": 86400}
_EVERY = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Beat looks every minute, so a shorter interval would not be kept anyway.
MIN_EVERY_SECONDS = 60
DEFAULT_EVERY = "hourly"
DEFAULT_TIMEOUT = {"http": 10, "command": 30}
MAX_TIMEOUT = {"http": 60, "command": health_commands.MAX_TIMEOUT}
# An HTTP check needs the status only: a little of the body is read, then the connection drops.
HTTP_MAX_BYTES = 16 * 1024
HTTP_MAX_REDIRECTS = 3
# A check is due this much before its interval has fully passed, so the minute beat's own
# jitter does not push a 5-minute check to 6 minutes.
DUE_SLACK = timedelta(seconds=5)


class HealthCheckError(FeatureError):
    """A health check that cannot be set or run, with a message a person can act on."""


# What starts an opened incident's work. The pipeline layer registers it when it loads
# (pipeline.apps → pipeline.incidents.launch_incident); without one, incidents only open.
IncidentLauncher = Callable[[Feature], object]
_incident_launcher: IncidentLauncher | None = None


def set_incident_launcher(launcher: IncidentLauncher | None) -> None:
    global _incident_launcher
    _incident_launcher = launcher


def every_seconds(value: object) -> int:
    """Seconds in a frequency: "5m", "90s", "2h", "1d", "hourly" or "daily"."""
    text = str(value).strip().lower()
    if text in _NAMED_EVERY:
        return _NAMED_EVERY[text]
    match = _EVERY.match(text)
    if match is None:
        raise HealthCheckError(
            f"Unknown frequency {value!r}: use hourly, daily or a number with s, m, h or d "
            "(e.g. 5m)."
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < MIN_EVERY_SECONDS:
        raise HealthCheckError("Health checks run at most once a minute: use 1m or more.")
    return seconds


def commands_allowed() -> bool:
    """Whether the operator defined any command for command checks."""
    return bool(health_commands.operator_commands())


def _commands_off() -> HealthCheckError:
    return HealthCheckError(
        "Command checks are off on this server: its operator defines the commands a check may "
        "run (HEALTH_CHECK_COMMANDS)."
    )


def _command_for(config: dict[str, Any]) -> health_commands.OperatorCommand:
    """The operator's command a config names, with its arguments checked against the list."""
    commands = health_commands.operator_commands()
    if not commands:
        raise _commands_off()
    command = commands.get(config["command"])
    if command is None:
        names = ", ".join(sorted(commands))
        raise HealthCheckError(f"Unknown command {config['command']!r}: choose one of {names}.")
    refused = [a for a in config["args"] if a not in command.allowed_args]
    if refused:
        allowed = ", ".join(sorted(command.allowed_args)) or "none"
        raise HealthCheckError(
            f"Argument(s) {', '.join(map(repr, refused))} are not allowed for "
            f"{command.name} (allowed: {allowed})."
        )
    return command


def validate_health_check(config: object) -> dict[str, Any]:
    """The config, checked and with its defaults filled in; {} means no check."""
    if config in (None, {}, ""):
        return {}
    if not isinstance(config, dict):
        raise HealthCheckError('A health check is a JSON object, e.g. {"type": "http", ...}.')
    config = dict(config)
    if "frequency" in config and "every" not in config:  # the name the first draft used
        config["every"] = config.pop("frequency")
    kind = config.get("type")
    if kind not in TYPES:
        raise HealthCheckError(f"Unknown check type {kind!r}: use http or command.")
    target = _TARGET[kind]
    unknown = set(config) - _KEYS - {target} - ({"args"} if kind == "command" else set())
    if unknown:
        names = ", ".join(sorted(unknown))
        raise HealthCheckError(f"Unknown field(s) in the health check: {names}.")
    value = config.get(target)
    if not isinstance(value, str) or not value.strip():
        raise HealthCheckError(f"A {kind} check needs a {target}.")
    value = value.strip()
    extra: dict[str, Any] = {}
    if kind == "http":
        if len(value) > 2000:
            raise HealthCheckError("A URL is at most 2,000 characters.")
        try:
            outbound.addresses.parse_url(value)
        except outbound.Refused as exc:
            raise HealthCheckError(str(exc)) from exc
    else:
        args = config.get("args", [])
        if (
            not isinstance(args, list)
            or len(args) > _ARGS_MAX
            or not all(isinstance(a, str) and len(a) <= 200 for a in args)
        ):
            raise HealthCheckError(f"args is a list of at most {_ARGS_MAX} strings.")
        extra["args"] = list(args)
    expect = str(config.get("expect") or _DEFAULT_EXPECT[kind])
    if not _EXPECT[kind].match(expect):
        raise HealthCheckError(
            f"Expect {expect!r} is not understood: use {_DEFAULT_EXPECT[kind]!r} or similar."
        )
    every = str(config.get("every") or DEFAULT_EVERY)
    every_seconds(every)
    timeout = config.get("timeout", DEFAULT_TIMEOUT[kind])
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not 1 <= timeout <= MAX_TIMEOUT[kind]
    ):
        raise HealthCheckError(f"Timeout is a whole number of seconds, 1 to {MAX_TIMEOUT[kind]}.")
    clean = {"type": kind, target: value, **extra}
    return {**clean, "expect": expect, "every": every, "timeout": timeout}


def do_set_health_check(feature: Feature, config: object, user: User | None) -> Feature:
    """Set (or clear, with {}) a card's health check.

    `user` None is the server's operator (the CLI without --as). An HTTP check's URL must not
    point to a refused address now (it is checked again before every request); a command check
    names one of the operator's commands and, from a person, needs the owner or admin role. A
    workspace has at most HEALTH_CHECK_MAX_PER_WORKSPACE checks. Raises HealthCheckError.
    """
    clean = validate_health_check(config)
    if user is not None:
        role = (
            Membership.objects.filter(workspace_id=feature.workspace_id, user=user)
            .values_list("role", flat=True)
            .first()
        )
        if role is None or role == Membership.Role.VIEWER:
            raise HealthCheckError("Only members of this workspace can change its health checks.")
        if clean.get("type") == "command" and role not in (
            Membership.Role.OWNER,
            Membership.Role.ADMIN,
        ):
            raise HealthCheckError("Only workspace owners and admins can set command checks.")
    if clean.get("type") == "command":
        _command_for(clean)
    elif clean.get("type") == "http":
        try:
            outbound.check_url(clean["url"])
        except outbound.Refused as exc:
            raise HealthCheckError(str(exc)) from exc
    if clean:
        _check_workspace_cap(feature)
    Feature.objects.filter(pk=feature.pk).update(
        health_check=clean, version=F("version") + 1, updated_at=timezone.now()
    )
    feature.refresh_from_db()
    events.card_changed_on_commit(feature)
    return feature


def _check_workspace_cap(feature: Feature) -> None:
    cap = settings.HEALTH_CHECK_MAX_PER_WORKSPACE
    others = (
        Feature.objects.filter(workspace_id=feature.workspace_id)
        .exclude(health_check={})
        .exclude(pk=feature.pk)
        .count()
    )
    if others >= cap:
        raise HealthCheckError(
            f"This workspace already has {others} health checks, the most it may have "
            f"(HEALTH_CHECK_MAX_PER_WORKSPACE={cap}): remove one first."
        )


def describe(config: dict[str, Any]) -> str:
    """One line for people: "http https://… expects status:200, every 5m"."""
    if not config:
        return "no health check"
    target = config.get(_TARGET.get(str(config.get("type")), "url"), "")
    if config.get("args"):
        target = " ".join([str(target), *map(str, config["args"])])
    expect, every = config.get("expect"), config.get("every")
    return f"{config.get('type')} {target} expects {expect}, every {every}"


# --- Running checks -----------------------------------------------------------------------------


def _check_http(config: dict[str, Any]) -> tuple[bool, str]:
    expected = int(config["expect"].partition(":")[2])
    try:
        response = outbound.fetch(
            config["url"],
            timeout=config["timeout"],
            max_bytes=HTTP_MAX_BYTES,
            max_redirects=HTTP_MAX_REDIRECTS,
        )
    except outbound.OutboundError as exc:
        # "Unreachable", or why the address is refused: never the socket's own error.
        return False, str(exc)
    return response.status == expected, f"HTTP {response.status} (expected {expected})"


def _check_command(config: dict[str, Any]) -> tuple[bool, str]:
    command = _command_for(config)
    expected = int(config["expect"].partition(":")[2])
    try:
        code, line = health_commands.run_command(command, config["args"], config["timeout"])
    except OSError:
        return False, f"Could not start {command.name}: ask the server's operator."
    if code is None:
        return False, f"Timed out after {min(config['timeout'], command.timeout)} s"
    detail = f"exit code {code} (expected {expected})"
    return code == expected, f"{detail}: {line}" if line else detail


def open_incident(feature: Feature) -> Feature | None:
    """The feature's incident still being worked on, if any (the one a failure reuses)."""
    return (
        feature.children.filter(kind=Feature.Kind.INCIDENT)
        .exclude(status=Feature.Status.DONE)
        .exclude(FINISHED)
        .order_by("-id")
        .first()
    )


def run_health_check(feature: Feature) -> HealthCheckResult:
    """Run the card's check now and keep the result; open or note its incident."""
    config = validate_health_check(feature.health_check)
    if not config:
        raise HealthCheckError(f"Card #{feature.pk} has no health check: set one first.")
    if config["type"] == "command":
        _command_for(config)  # the operator may have removed it since it was set
    started = time.monotonic()
    ok, detail = (_check_http if config["type"] == "http" else _check_command)(config)
    duration_ms = round((time.monotonic() - started) * 1000)
    with transaction.atomic():
        # The card's lock makes concurrent failures agree on one incident.
        locked = (
            Feature.objects.select_for_update(of=("self",))
            .select_related("workspace", "stage")
            .get(pk=feature.pk)
        )
        previous = locked.health_results.first()
        result = HealthCheckResult.objects.create(
            feature=locked,
            ok=ok,
            detail=detail[:500],
            duration_ms=duration_ms,
            checked_at=timezone.now(),
        )
        incident = open_incident(locked)
        if not ok and incident is None:
            opened = _open_incident(locked, config, result)
            if _incident_launcher is not None:
                # In the same transaction: an incident never stays opened but not started.
                _incident_launcher(opened)
        elif ok and incident is not None and previous is not None and not previous.ok:
            _note_recovery(incident, result)
        events.card_changed_on_commit(locked)
    return result


def _open_incident(feature: Feature, config: dict[str, Any], result: HealthCheckResult) -> Feature:
    when = f"{result.checked_at:%Y-%m-%d %H:%M} UTC"
    incident = do_create_feature(
        feature.workspace,
        title=f"Health check failing: {feature.title}"[:200],
        description=(
            f"The health check of #{feature.pk} “{feature.title}” failed at {when}: "
            f"{result.detail}\n\nCheck: {describe(config)}."
        ),
        kind=Feature.Kind.INCIDENT,
        parent=feature,
        user=None,
        note=f"Opened by health check: {result.detail}"[:500],
    )
    events.toast_on_commit(
        feature.workspace_id,
        f"“{feature.title}” is failing its health check: incident #{incident.pk} opened",
        level="error",
        feature_id=incident.pk,
    )
    notices.emit(
        notices.HEALTH_FAILING,
        workspace_id=feature.workspace_id,
        feature_id=incident.pk,
        text=f"“{feature.title}” is failing its health check: {result.detail}"[:500],
        checked_feature_id=feature.pk,
    )
    return incident


def _note_recovery(incident: Feature, result: HealthCheckResult) -> None:
    note = f"Recovered at {result.checked_at:%Y-%m-%d %H:%M} UTC: {result.detail}"
    description = f"{incident.description}\n\n{note}".strip()[:20_000]
    Feature.objects.filter(pk=incident.pk).update(
        description=description,
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    events.card_changed_on_commit(incident)
    notices.emit(
        notices.HEALTH_RECOVERED,
        workspace_id=incident.workspace_id,
        feature_id=incident.pk,
        text=f"“{incident.title}”: {note}"[:500],
    )


def due_checks(now: datetime | None = None) -> list[tuple[Feature, dict[str, Any]]]:
    """Live cards whose check interval has passed since their last result, with their checked
    config; a check still in flight is not due (features.health_schedule)."""
    now = now or timezone.now()
    due: list[tuple[Feature, dict[str, Any]]] = []
    candidates = list(
        Feature.objects.filter(stage__is_live=True)
        .exclude(health_check={})
        .select_related("workspace", "stage")
        .annotate(last_checked=Max("health_results__checked_at"))
        .order_by(F("last_checked").asc(nulls_first=True), "id")
    )
    busy = health_schedule.inflight_ids([f.pk for f in candidates])
    commands_on = commands_allowed()
    for feature in candidates:
        if feature.pk in busy:
            continue
        try:
            config = validate_health_check(feature.health_check)
        except HealthCheckError as exc:
            logger.warning("health check of card %s is invalid: %s", feature.pk, exc)
            continue
        if not config or (config["type"] == "command" and not commands_on):
            continue
        last: datetime | None = feature.last_checked
        every = timedelta(seconds=every_seconds(config["every"]))
        if last is None or last + every - DUE_SLACK <= now:
            due.append((feature, config))
    return due
