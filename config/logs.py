"""Log lines an operator can follow one run through: web, worker and beat alike.

Every record gets `process` (web / worker / beat / the management command, from RUNWAY_PROCESS
that `make run`'s supervisor sets, else guessed from the command line) and whichever of
`run_id`, `card_id`, `workspace_id`, `attempt` and `worker_id` are known where it was logged:
passed as `extra=`, or set for a block with `log_context(...)` (the executor sets them for the
run it executes, the web for the card or run a request is about).

RUNWAY_LOG_FORMAT=json writes one JSON object per line (python-json-logger), e.g.
{"time": "...", "level": "INFO", "logger": "pipeline.runlog", "process": "worker",
 "message": "Step 1/2: write-architecture v1 via offline", "run_id": 7, "card_id": 15,
 "workspace_id": 1, "attempt": 1, "worker_id": "celery@host/4242"}
so `grep '"run_id": 7'` (or jq) follows run 7 across every process. The default, "plain",
is for people: `2026-01-01 12:00:00,000 worker INFO pipeline.runlog: Step 1/2 ... [run=7 ...]`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

CONTEXT_FIELDS = ("run_id", "card_id", "workspace_id", "attempt", "worker_id")

_context: ContextVar[dict[str, Any] | None] = ContextVar("runway_log_context", default=None)


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Add ids (CONTEXT_FIELDS; None or "" is skipped) to every record logged in the block."""
    known = {key: value for key, value in ids.items() if value not in (None, "")}
    token = _context.set({**(_context.get() or {}), **known})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


def process_name(argv: list[str] | None = None) -> str:
    """web, worker, beat, or the management command's name (e.g. "pipeline" for the CLI)."""
    named = os.environ.get("RUNWAY_PROCESS")
    if named:
        return named
    raw = sys.argv if argv is None else argv
    # `python -m celery` makes argv[0] ".../celery/__main__.py": name a program by its folder.
    args = [
        os.path.basename(os.path.dirname(a)) if a.endswith("__main__.py") else os.path.basename(a)
        for a in raw
    ]
    if args and args[0] == "daphne":
        return "web"
    if args and args[0] == "celery":
        return next((kind for kind in ("worker", "beat") if kind in args), "celery")
    if args and args[0] == "manage.py" and len(args) > 1:
        return args[1]
    return args[0] if args else "python"


class ContextFilter(logging.Filter):
    """Puts `process` and the known ids on every record (attached to the handlers)."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.process = process_name()

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class PlainFormatter(logging.Formatter):
    """The people's format: the process after the time, the known ids at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(process_name)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "process_name"):
            record.process_name = process_name()
        line = super().format(record)
        ids = " ".join(
            f"{key.removesuffix('_id')}={getattr(record, key)}"
            for key in CONTEXT_FIELDS
            if getattr(record, key, None) not in (None, "")
        )
        if not ids:
            return line
        # The ids belong to the message's first line, not after a traceback.
        first, newline, rest = line.partition("\n")
        return f"{first} [{ids}]{newline}{rest}"


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Django's LOGGING for RUNWAY_LOG_FORMAT ("plain" or "json") and LOG_LEVEL."""
    json_formatter = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(process_name)s %(message)s",
        "rename_fields": {
            "asctime": "time",
            "levelname": "level",
            "name": "logger",
            "process_name": "process",
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "config.logs.ContextFilter"}},
        "formatters": {"plain": {"()": "config.logs.PlainFormatter"}, "json": json_formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # Failed logins are warnings; axes' routine bookkeeping at INFO is noise.
            "axes": {"level": "WARNING"},
        },
    }
