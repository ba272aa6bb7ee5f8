"""Liveness of the parts a pipeline needs: database, broker, workers."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.db import connection

from pipeline.models import Run, WorkerHeartbeat


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


def health_report() -> dict[str, Any]:
    database = check_database()
    report: dict[str, Any] = {
        "database": database,
        "broker": check_broker(),
        "workers": check_workers() if database["ok"] else {"ok": False, "error": "no database"},
    }
    report["ok"] = all(part["ok"] for part in list(report.values()))
    return report
