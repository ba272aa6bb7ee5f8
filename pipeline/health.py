"""Liveness of the parts a pipeline needs: database, broker, workers, and the recovery sweeps.

The full report (error text, worker ids, every run id) is for site administrators; anonymous
callers get ok/failing per part, members only their own workspaces' runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from features.access import workspaces_for
from pipeline.models import Run, Sweep, WorkerHeartbeat


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def broker_backlog() -> int | None:
    """Messages waiting in the run queue, or None when the broker cannot be asked."""
    client = _redis()
    try:
        return int(client.llen(settings.CELERY_TASK_DEFAULT_QUEUE))
    except redis.RedisError:
        return None
    finally:
        client.close()


def check_broker() -> dict[str, Any]:
    client = _redis()
    try:
        client.ping()
        queued = client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
        return {"ok": True, "embedded": settings.REDIS_IS_EMBEDDED, "messages_waiting": queued}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        client.close()


def check_workers() -> dict[str, Any]:
    try:
        alive = list(WorkerHeartbeat.alive().values("worker_id", "last_seen", "current_run_ids"))
        queued = Run.objects.filter(status=Run.Status.QUEUED).count()
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    return {
        "ok": bool(alive),
        "alive": len(alive),
        "workers": [{**w, "last_seen": w["last_seen"].isoformat()} for w in alive],
        "runs_queued": queued,
        **({} if alive else {"error": "no worker alive: runs will start when a worker connects"}),
    }


def check_sweeps(now: datetime | None = None) -> dict[str, Any]:
    """When a sweeper (beat or a worker) last finished the recovery sweeps; not ok when that
    is longer ago than ``RUNWAY_SWEEP_LATE_SECONDS``, or never."""
    now = now or timezone.now()
    try:
        row = Sweep.objects.filter(name="recovery").values("finished_at", "by").first()
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    last = row["finished_at"] if row else None
    late_after = settings.RUNWAY_SWEEP_LATE_SECONDS
    age = (now - last).total_seconds() if last is not None else None
    report: dict[str, Any] = {
        "ok": age is not None and age <= late_after,
        "last_ran_at": last.isoformat() if last is not None else None,
        "seconds_ago": round(age, 1) if age is not None else None,
        "late_after_seconds": late_after,
        "by": row["by"] if row else "",
    }
    if not report["ok"]:
        report["error"] = (
            "the recovery sweeps have never run: start beat or a worker"
            if last is None
            else f"the recovery sweeps last ran {age:.0f} s ago: start beat or a worker"
        )
    return report


def health_report() -> dict[str, Any]:
    database = check_database()
    no_database = {"ok": False, "error": "no database"}
    report: dict[str, Any] = {
        "database": database,
        "broker": check_broker(),
        "workers": check_workers() if database["ok"] else no_database,
        "sweeps": check_sweeps() if database["ok"] else no_database,
    }
    report["ok"] = all(part["ok"] for part in list(report.values()))
    return report


def public_status(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may know (GET /healthz, no login): ok or failing per part, nothing else —
    no run ids, worker hosts, pids or error text from another tenant's world."""
    parts = {
        name: "ok" if part["ok"] else "failing" for name, part in report.items() if name != "ok"
    }
    return {"ok": bool(report["ok"]), **parts}


def health_report_for(user: User) -> dict[str, Any]:
    """The health report a workspace member gets from the API: each part's status, the number
    of live workers, and only the runs of the member's own workspaces."""
    report = health_report()
    mine = Run.objects.filter(workspace__in=workspaces_for(user))
    workers = report["workers"]
    filtered: dict[str, Any] = {"ok": bool(workers["ok"]), "alive": int(workers.get("alive", 0))}
    if workers.get("ok") or "alive" in workers:
        running = {i for w in workers.get("workers", []) for i in _int_ids(w["current_run_ids"])}
        filtered["running_runs"] = sorted(mine.filter(pk__in=running).values_list("pk", flat=True))
        filtered["runs_queued"] = mine.filter(status=Run.Status.QUEUED).count()
    if not workers["ok"]:
        filtered["error"] = "no worker alive: runs will start when a worker connects"
    return {
        "ok": bool(report["ok"]),
        "database": {"ok": bool(report["database"]["ok"])},
        "broker": {"ok": bool(report["broker"]["ok"])},
        "workers": filtered,
        "sweeps": {"ok": bool(report["sweeps"]["ok"])},
    }


def _int_ids(raw: Any) -> list[int]:
    if not isinstance(raw, list):
        return []
    return [i for i in raw if isinstance(i, int) and not isinstance(i, bool)]
