"""Health checks of live cards: an HTTP status or a command's exit code, on a schedule.

A card's ``health_check`` is one of::

    {"type": "http", "url": "https://shop.example/health", "expect": "status:200", "every": "5m"}
    {"type": "command", "command": "node tools/x.js --help", "expect": "exit_code:0",
     "every": "daily"}

Every run is kept as a HealthCheckResult. A failing check opens ONE incident card linked to the
feature (reused while it is open) and hands it, in the same transaction, to the incident
launcher the pipeline layer registers (``set_incident_launcher``): the card domain knows no
runner, and the runner launches incidents under the same automation rules as any launch. The
first passing check after a failure notes the recovery on that incident. Command checks run a
program on a worker: they are off unless HEALTH_CHECK_ALLOW_COMMANDS is on, only owners and
admins may set them, and they run without a shell and with a timeout.
"""

from __future__ import annotations

import http.client
import logging
import re
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from features import events
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
_NAMED_EVERY = {"hourly": 3600, "daily": 86400}
_EVERY = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Beat looks every minute, so a shorter interval would not be kept anyway.
MIN_EVERY_SECONDS = 60
DEFAULT_EVERY = "hourly"
DEFAULT_TIMEOUT = {"http": 10, "command": 30}
MAX_TIMEOUT = {"http": 60, "command": 300}
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
    return bool(getattr(settings, "HEALTH_CHECK_ALLOW_COMMANDS", False))


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
    unknown = set(config) - _KEYS - {target}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise HealthCheckError(f"Unknown field(s) in the health check: {names}.")
    value = config.get(target)
    if not isinstance(value, str) or not value.strip():
        raise HealthCheckError(f"A {kind} check needs a {target}.")
    value = value.strip()
    if kind == "http":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HealthCheckError(f"{value!r} is not an http(s) URL.")
    else:
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise HealthCheckError(f"The command cannot be read: {exc}.") from exc
        if not argv:
            raise HealthCheckError("A command check needs a command.")
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
    return {"type": kind, target: value, "expect": expect, "every": every, "timeout": timeout}


def do_set_health_check(feature: Feature, config: object, user: User | None) -> Feature:
    """Set (or clear, with {}) a card's health check.

    `user` None is the server's operator (the CLI without --as). Command checks need
    HEALTH_CHECK_ALLOW_COMMANDS and, from a person, the owner or admin role.
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
    if clean.get("type") == "command" and not commands_allowed():
        raise HealthCheckError(
            "Command checks are off on this server (HEALTH_CHECK_ALLOW_COMMANDS=1 turns them on)."
        )
    Feature.objects.filter(pk=feature.pk).update(
        health_check=clean, version=F("version") + 1, updated_at=timezone.now()
    )
    feature.refresh_from_db()
    events.card_changed_on_commit(feature)
    return feature


def describe(config: dict[str, Any]) -> str:
    """One line for people: "http https://… expects status:200, every 5m"."""
    if not config:
        return "no health check"
    target = config.get(_TARGET.get(str(config.get("type")), "url"), "")
    expect, every = config.get("expect"), config.get("every")
    return f"{config.get('type')} {target} expects {expect}, every {every}"


# --- Running checks -----------------------------------------------------------------------------


def _check_http(config: dict[str, Any]) -> tuple[bool, str]:
    url, timeout = config["url"], config["timeout"]
    expected = int(config["expect"].partition(":")[2])
    # The scheme was checked when the check was set: http(s) only, never file: or ftp:.
    request = urllib.request.Request(url, headers={"User-Agent": "Runway health check"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except urllib.error.URLError as exc:
        return False, f"GET {url} failed: {exc.reason}"
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, garbage replies
        return False, f"GET {url} failed: {exc or type(exc).__name__}"
    return status == expected, f"HTTP {status} (expected {expected})"


def _check_command(config: dict[str, Any]) -> tuple[bool, str]:
    argv, timeout = shlex.split(config["command"]), config["timeout"]
    expected = int(config["expect"].partition(":")[2])
    try:
        # No shell: the command line is split into arguments, so nothing is interpreted.
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return False, f"Timed out after {timeout} s"
    except OSError as exc:
        return False, f"Could not run {argv[0]}: {exc.strerror or exc}"
    detail = f"exit code {done.returncode} (expected {expected})"
    if done.returncode != expected:
        output = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        if output:
            detail += f": {output[-1]}"
    return done.returncode == expected, detail


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
    if config["type"] == "command" and not commands_allowed():
        raise HealthCheckError(
            "Command checks are off on this server (HEALTH_CHECK_ALLOW_COMMANDS=1 turns them on)."
        )
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


def due_checks(now: datetime | None = None) -> list[Feature]:
    """Live cards whose check interval has passed since their last result."""
    now = now or timezone.now()
    due: list[Feature] = []
    candidates = (
        Feature.objects.filter(stage__is_live=True)
        .exclude(health_check={})
        .select_related("workspace", "stage")
        .annotate(last_checked=Max("health_results__checked_at"))
        .order_by("id")
    )
    for feature in candidates:
        try:
            config = validate_health_check(feature.health_check)
        except HealthCheckError as exc:
            logger.warning("health check of card %s is invalid: %s", feature.pk, exc)
            continue
        if not config or (config["type"] == "command" and not commands_allowed()):
            continue
        last: datetime | None = feature.last_checked
        every = timedelta(seconds=every_seconds(config["every"]))
        if last is None or last + every - DUE_SLACK <= now:
            due.append(feature)
    return due


def run_due_health_checks(now: datetime | None = None) -> int:
    """Beat's minute task: run every due check; one broken check never stops the others."""
    ran = 0
    for feature in due_checks(now):
        try:
            run_health_check(feature)
        except HealthCheckError as exc:
            logger.warning("health check of card %s not run: %s", feature.pk, exc)
            continue
        except Exception:
            logger.exception("health check of card %s crashed", feature.pk)
            continue
        ran += 1
    return ran
