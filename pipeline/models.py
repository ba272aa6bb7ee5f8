"""Runs (one stage's recipe executed for one card), their logs, and the workers that run them.

The pipeline itself lives in these rows: ``parent_run`` points at the run that triggered this one
and ``pipeline_next`` lists the stages still to run, so no broker state is needed to resume.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# A worker, or a running run, silent this long is lost (settings.RUNWAY_WORKER_STALE_SECONDS).
WORKER_STALE_AFTER = timedelta(seconds=settings.RUNWAY_WORKER_STALE_SECONDS)


class Run(models.Model):
    class Status(models.TextChoices):
        # Waits for its card's dependencies (or, in a tree, the work before it) to finish;
        # queued by itself when they do.
        WAITING = "waiting", "Waiting for dependencies"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        AUTO = "auto", "Automatic"

    class ErrorKind(models.TextChoices):
        NONE = "", "None"
        TRANSIENT = "transient", "Transient (retried)"
        PERMANENT = "permanent", "Permanent"
        GATE = "gate", "Gate failed"
        LOST = "lost", "Worker lost"
        DEFERRED = "deferred", "Waiting for a slot or budget"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        PERSON = "person", "A person"
        PIPELINE = "pipeline", "The pipeline"
        HEALTH_CHECK = "health_check", "A health check"

    ACTIVE_STATUSES = (Status.WAITING, Status.AWAITING_APPROVAL, Status.QUEUED, Status.RUNNING)
    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    workspace = models.ForeignKey(
        "features.Workspace", on_delete=models.CASCADE, related_name="runs"
    )
    feature = models.ForeignKey("features.Feature", on_delete=models.CASCADE, related_name="runs")
    stage = models.ForeignKey("features.Stage", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.AUTO)
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    # A person's "edit and rerun" of a finished run: linked, never replacing its history.
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    pipeline_next = models.JSONField(default=list, blank=True)
    # The batch (generate subtasks for many stories, or a whole tree) this run belongs to: one
    # Stop, one Retry and one progress bar for all of its runs.
    batch = models.ForeignKey(
        "pipeline.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # 1-based place of this run in the pipeline it belongs to: "step X of N" on the card,
    # with N = pipeline_index + len(pipeline_next).
    pipeline_index = models.PositiveSmallIntegerField(default=1)
    # Fencing token: each claim increments it and every later write must match it.
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who or what started the run: a person, the pipeline's chain, or a failing health check.
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.PERSON)
    worker_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error_kind = models.CharField(max_length=10, choices=ErrorKind.choices, blank=True)
    error_message = models.TextField(blank=True)
    # What the card says about this run in its current state ("Retrying at …", "Gate failed: …"),
    # written with each transition; the card's status is derived from it (engine/card_state.py).
    card_note = models.CharField(max_length=500, blank=True)
    step_index = models.PositiveSmallIntegerField(default=0, help_text="Steps completed so far.")
    step_total = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    skill_versions = models.JSONField(default=dict, blank=True)
    provider = models.CharField(max_length=30, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    # None: unknown, because a call of this run reported no token usage (never shown as $0).
    cost_usd = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), null=True, blank=True
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
            models.Index(fields=["status", "queued_at"], name="run_status_queued"),
            models.Index(fields=["workspace", "status"], name="run_workspace_status"),
            models.Index(fields=["batch", "feature"], name="run_batch_feature"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["feature"],
                condition=Q(status__in=["waiting", "awaiting_approval", "queued", "running"]),
                name="run_one_active_per_feature",
            ),
            models.UniqueConstraint(fields=["parent_run"], name="run_one_child_per_parent"),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "waiting",
                        "awaiting_approval",
                        "queued",
                        "running",
                        "succeeded",
                        "failed",
                        "cancelled",
                    ]
                ),
                name="run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.stage.key} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def worker_lost(self) -> bool:
        """Running, but its heartbeat is older than WORKER_STALE_AFTER: the worker died or hangs.
        True until the rescue sweep requeues the run (or fails it, attempts used up)."""
        last = self.heartbeat_at or self.claimed_at
        return (
            self.status == self.Status.RUNNING
            and last is not None
            and timezone.now() - last >= WORKER_STALE_AFTER
        )

    @property
    def rescue_will_retry(self) -> bool:
        """Whether the rescue sweep will requeue this run (attempts remain) rather than fail it."""
        return self.attempt < self.max_attempts

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def pipeline_total(self) -> int:
        return self.pipeline_index + len(self.pipeline_next)

    @property
    def progress_percent(self) -> int:
        """How far the whole pipeline is, counting this run's finished steps."""
        done = float(self.pipeline_index - 1)
        if self.status == self.Status.SUCCEEDED:
            done += 1
        elif self.step_total:
            done += self.step_index / self.step_total
        return round(100 * done / max(self.pipeline_total, 1))

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class RunLog(models.Model):
    class Level(models.TextChoices):
        DEBUG = "debug", "Debug"
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logs")
    seq = models.PositiveIntegerField()
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="runlog_seq_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.message[:60]}"


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    concurrency = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    current_run_ids = models.JSONField(default=list, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.worker_id

    @property
    def is_alive(self) -> bool:
        return self.stopped_at is None and timezone.now() - self.last_seen < WORKER_STALE_AFTER

    @classmethod
    def alive(cls) -> models.QuerySet[WorkerHeartbeat]:
        return cls.objects.filter(
            stopped_at__isnull=True, last_seen__gte=timezone.now() - WORKER_STALE_AFTER
        )


class ModelPrice(models.Model):
    """What a provider charges per million tokens of a model; runs' costs are computed from it."""

    provider = models.CharField(max_length=30)
    model = models.CharField(max_length=100)
    input_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)
    output_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)
    cache_read_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    cache_write_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model"], name="model_price_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class Generation(models.Model):
    """One application of a stage's generated list to a parent card, keyed by
    (parent, stage, number): the first list is generation 1, each rerun, retry or re-entry
    that produces a list again is the next, reconciled with the cards the earlier ones made.

    Any kind of parent works the same (a feature's tasks, an epic's stories, a story's
    subtasks). `kept`, `added`, `updated` and `removed` are card ids: what the card page shows
    as "what changed".
    """

    parent = models.ForeignKey(
        "features.Feature", on_delete=models.CASCADE, related_name="generations"
    )
    stage = models.ForeignKey("features.Stage", on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    # A run applies its list at most once (a duplicated completion or accept finds it here).
    run = models.OneToOneField(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation"
    )
    kept = models.JSONField(default=list, blank=True)
    added = models.JSONField(default=list, blank=True)
    updated = models.JSONField(default=list, blank=True)
    removed = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "stage", "number"], name="generation_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"generation {self.number} of {self.parent_id} at {self.stage_id}"


class Sweep(models.Model):
    """When the recovery sweeps last ran, and a lease so that many sweepers (beat, every
    worker, a second beat) run them at most once per interval. /healthz reads it."""

    name = models.CharField(max_length=40, unique=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    by = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (last {self.finished_at})"


class Batch(models.Model):
    """Runs started together: "generate subtasks for all stories" of an epic, or its whole tree.

    Only a label over run rows (``Run.batch``): what the batch is doing, how far it is and
    whether it is over are read from its runs. ``finished_at`` is set once, by the conditional
    UPDATE that also sends its final toast; a Retry clears it again.
    """

    class Kind(models.TextChoices):
        SUBTASKS = "subtasks", "Generate subtasks"
        TREE = "tree", "Whole tree"

    workspace = models.ForeignKey(
        "features.Workspace", on_delete=models.CASCADE, related_name="batches"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    root = models.ForeignKey(
        "features.Feature", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # What it made, written when it finished: {"added": {kind: n}, "parents": n, "failed": n}.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["root", "-created_at"], name="batch_root_created")]

    def __str__(self) -> str:
        return f"batch #{self.pk} ({self.kind})"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class BulkAction(models.Model):
    """One operator's "retry / cancel / rescue every run matching this filter", run as one
    durable job: the runs it acts on are fixed when it is confirmed (``BulkActionItem``), and a
    Celery task works through them in chunks. Each item is acted on and marked in one
    transaction, so a worker that dies mid-way leaves every item either done or still pending,
    and the job can be resumed (the recovery sweep re-sends a job whose heartbeat went stale).
    """

    class Action(models.TextChoices):
        RETRY = "retry", "Retry"
        CANCEL = "cancel", "Cancel"
        RESCUE = "rescue", "Rescue"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    workspace = models.ForeignKey(
        "features.Workspace", on_delete=models.CASCADE, related_name="bulk_actions"
    )
    # None: the server's operator (manage.py pipeline without --as).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    # The filter as the operator gave it, normalised (pipeline.bulk.filters.RunFilter.as_dict).
    filter = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, default="web")  # web, api, cli
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    # Runs that no longer qualified when their turn came (retried, finished or cancelled
    # meanwhile): the engine's refusal is kept on the item.
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with every item processed; a queued or running job silent for
    # RUNWAY_BULK_STALE_SECONDS is re-sent by the recovery sweep.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="bulk_workspace_created"),
            models.Index(fields=["status", "heartbeat_at"], name="bulk_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"bulk {self.action} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def filter_text(self) -> str:
        """The filter for people: "provider anthropic, error kind transient"."""
        filters = self.filter if isinstance(self.filter, dict) else {}
        parts = [f"{str(k).replace('_', ' ')} {v}" for k, v in filters.items()]
        return ", ".join(parts) or "no filter"

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def progress_percent(self) -> int:
        return round(100 * self.processed / self.total) if self.total else 100


class BulkActionItem(models.Model):
    """One run a bulk action was confirmed for, and what happened to it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    bulk_action = models.ForeignKey(BulkAction, on_delete=models.CASCADE, related_name="items")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.CharField(max_length=500, blank=True)
    # The run a retry created.
    new_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bulk_action", "id"]
        constraints = [
            models.UniqueConstraint(fields=["bulk_action", "run"], name="bulk_item_once_per_run")
        ]
        indexes = [models.Index(fields=["bulk_action", "outcome"], name="bulk_item_outcome")]

    def __str__(self) -> str:
        return f"bulk #{self.bulk_action_id} run #{self.run_id} ({self.outcome})"


class DefinitionsVersion(models.Model):
    """One row counting the changes to what a stage run executes: stages, their recipes, the
    recipes' steps and gates, and skills. On PostgreSQL a statement-level trigger on each of
    those tables adds one in the changing transaction, whatever the code path (admin, bulk
    update, SQL), so a worker may keep definitions it read for as long as the count it sees in
    its claim is the same (pipeline.engine.definitions)."""

    value = models.BigIntegerField(default=0)

    class Meta:
        # The table is the migration's, not Django's to manage: a flush (a test database
        # emptied between tests) must not delete the row, or workers would stop caching.
        managed = False
        db_table = "pipeline_definitionsversion"

    def __str__(self) -> str:
        return f"definitions v{self.value}"
