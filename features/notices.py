"""Happenings worth telling people outside the board: the hook notifications listen on.

The engine and the card domain call :func:`emit` inside the transaction that made the thing
happen; listeners (the ``notifications`` app registers one at start-up) write what they need
in that same transaction and send nothing before it commits. Neither ``features`` nor
``pipeline`` knows who listens: with no listener an emit costs one empty loop.

Kinds (the ``type`` of a webhook event):

* ``run.awaiting_decision`` — a result waits for Accept / Reject;
* ``run.awaiting_start`` — a stage waits for a person's Start;
* ``run.failed`` — a run failed for good (permanent error, gates, attempts used up);
* ``pipeline.finished`` — a pipeline reached its last stage;
* ``budget.reached`` — the workspace's monthly budget stops new runs;
* ``slots.exhausted`` — a run has waited long for a free slot (the concurrency limit);
* ``health.failing`` / ``health.recovered`` — a live card's check failed (incident opened) or
  passes again;
* ``worker.gone`` — a run's worker stopped heartbeating and the run was taken back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, transaction

logger = logging.getLogger(__name__)

AWAITING_DECISION = "run.awaiting_decision"
AWAITING_START = "run.awaiting_start"
RUN_FAILED = "run.failed"
PIPELINE_FINISHED = "pipeline.finished"
BUDGET_REACHED = "budget.reached"
SLOTS_EXHAUSTED = "slots.exhausted"
HEALTH_FAILING = "health.failing"
HEALTH_RECOVERED = "health.recovered"
WORKER_GONE = "worker.gone"

KINDS = (
    AWAITING_DECISION,
    AWAITING_START,
    RUN_FAILED,
    PIPELINE_FINISHED,
    BUDGET_REACHED,
    SLOTS_EXHAUSTED,
    HEALTH_FAILING,
    HEALTH_RECOVERED,
    WORKER_GONE,
)


@dataclass(frozen=True)
class Notice:
    """One happening: its kind, where, a short text for people, and kind-specific data."""

    kind: str
    workspace_id: int
    text: str
    feature_id: int | None = None
    run_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The card and run as the emitter holds them, current in its transaction: a listener may
    # use them instead of reading them again (None: read them).
    card: Any = field(default=None, compare=False, repr=False)
    run: Any = field(default=None, compare=False, repr=False)


Listener = Callable[[Notice], object]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Register `listener` (idempotent); it is called in the emitter's transaction."""
    if listener not in _listeners:
        _listeners.append(listener)


def emit(
    kind: str,
    *,
    workspace_id: int,
    text: str,
    feature_id: int | None = None,
    run_id: int | None = None,
    card: Any = None,
    run: Any = None,
    **data: Any,
) -> None:
    """Tell every listener, in the caller's transaction. `card` and `run`: the instances of
    `feature_id` and `run_id` the caller holds, current in this transaction (the hot path
    passes them so listeners need not read them again).

    A listener's database failure is contained in a savepoint and logged: telling people about
    a transition must never undo the transition itself.
    """
    if not _listeners:
        return
    notice = Notice(kind, workspace_id, text, feature_id, run_id, data, card=card, run=run)
    for listener in _listeners:
        try:
            with transaction.atomic():
                listener(notice)
        except DatabaseError:
            logger.exception("notice %s for run %s not recorded", kind, run_id)
