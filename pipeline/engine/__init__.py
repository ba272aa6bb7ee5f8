"""The pipeline engine: every state change of a run, each in one transaction.

Invariants (DESIGN.md, "The engine"):

* at most one active run per feature (partial unique index), so concurrent launches make one;
* a run is claimed by a conditional UPDATE that increments ``attempt``, the fencing token every
  later write of that execution must match, so a rescued zombie can never write;
* completion saves the result and artifacts, evaluates gates, moves the card and creates the
  next run (``parent_run`` unique) in one transaction; enqueue and events go out after commit,
  so the next step can never start before the previous result is stored.

The package reads as a run's lifecycle: ``planning`` (which stages run), ``commands`` (what
people ask for), ``admission`` (may it start now), ``worker`` (claim, progress, failure),
``completion`` and ``generation`` (store and advance), ``sweeps`` (what beat and the workers
repair). ``launching`` starts a card's pipeline along its kind's path, ``waiting`` releases runs
that wait for dependencies, and ``trees`` starts many cards as one batch (generate subtasks for
all stories, launch a whole tree) with one Stop, one Retry and one progress bar.
``transitions`` is the only code that changes a run's status, and ``card_state`` the only code
that writes a card's displayed status, derived from its runs once per transaction.
The step loop that talks to providers lives in ``pipeline.executor``.
"""

from __future__ import annotations

from pipeline.engine.admission import month_spend, resume_deferred
from pipeline.engine.commands import (
    Created,
    Launched,
    accept_run,
    create_feature,
    launch_pipeline,
    move_feature,
    on_stage_entered,
    reject_run,
    rerun_run,
    rescue_run,
    retry_run,
    start_run,
    stop_pipeline,
)
from pipeline.engine.completion import complete_run
from pipeline.engine.errors import AlreadyRunning, EngineError, NothingToRun
from pipeline.engine.launching import Blocked
from pipeline.engine.planning import board_stages, entry_status, plan_from, runnable_recipe
from pipeline.engine.runs import enqueue
from pipeline.engine.steps import StepResult
from pipeline.engine.sweeps import (
    dispatch_stale_queued,
    rescue_stale_running,
    sweep_if_due,
    sweep_status,
)
from pipeline.engine.trees import (
    Progress,
    Started,
    generate_subtasks,
    launch_tree,
    progress,
    retry_batch,
    stop_batch,
)
from pipeline.engine.worker import (
    backoff_seconds,
    claim_run,
    fail_run,
    record_step,
    retry_later,
    still_running,
)
from pipeline.engine.workspace_settings import SETTINGS as WORKSPACE_SETTINGS
from pipeline.engine.workspace_settings import update_workspace_settings

__all__ = [
    "WORKSPACE_SETTINGS",
    "AlreadyRunning",
    "Blocked",
    "Created",
    "EngineError",
    "Launched",
    "NothingToRun",
    "Progress",
    "Started",
    "StepResult",
    "accept_run",
    "backoff_seconds",
    "board_stages",
    "claim_run",
    "complete_run",
    "create_feature",
    "dispatch_stale_queued",
    "enqueue",
    "entry_status",
    "fail_run",
    "generate_subtasks",
    "launch_pipeline",
    "launch_tree",
    "month_spend",
    "move_feature",
    "on_stage_entered",
    "plan_from",
    "progress",
    "record_step",
    "reject_run",
    "rerun_run",
    "rescue_run",
    "rescue_stale_running",
    "resume_deferred",
    "retry_batch",
    "retry_later",
    "retry_run",
    "runnable_recipe",
    "start_run",
    "still_running",
    "stop_batch",
    "stop_pipeline",
    "sweep_if_due",
    "sweep_status",
    "update_workspace_settings",
]
