"""Workspaces, their members and stages, and the feature cards that move across them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Workspace(models.Model):
    class Template(models.TextChoices):
        DELIVERY = "delivery", "Delivery (idea → spec → … → live)"
        PRODUCT = "product", "Product (inbox → discovery → … → GA)"
        QUICK = "quick", "Quick (idea → architecture → tasks → done)"

    class AutomationMode(models.TextChoices):
        MANUAL = "manual", "Manual: Launch runs the current stage only"
        TO_STOP_STAGE = "auto_to_stage", "Automatic up to the stop stage"
        ALL = "auto_all", "Automatic to the last stage"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    template = models.CharField(max_length=20, choices=Template.choices)
    automation_mode = models.CharField(
        max_length=20, choices=AutomationMode.choices, default=AutomationMode.TO_STOP_STAGE
    )
    stop_stage = models.ForeignKey(
        "features.Stage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="An automatic pipeline halts when the card reaches this stage.",
    )
    # 2-3 at once is what a provider's rate limit comfortably takes for a batch of generations.
    max_concurrent_runs = models.PositiveSmallIntegerField(default=3)
    monthly_budget_usd = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="Empty: no budget."
    )
    default_provider = models.CharField(max_length=30, default="offline")
    default_model = models.CharField(max_length=100, blank=True)
    # {kind: [stage keys]}: the stages a kind of card runs through (a story: its acceptance
    # criteria and subtasks, not the whole template). A kind not named runs every stage.
    kind_stages = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_concurrent_runs__gte=1), name="workspace_max_concurrent_runs_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(monthly_budget_usd__isnull=True)
                | Q(monthly_budget_usd__gte=Decimal("0")),
                name="workspace_budget_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role != self.Role.VIEWER

    @property
    def is_admin(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class Stage(models.Model):
    class Board(models.TextChoices):
        FEATURE = "feature", "Feature board"
        WORK = "work", "Work board"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="stages")
    key = models.SlugField(max_length=40)
    name = models.CharField(max_length=60)
    board = models.CharField(max_length=10, choices=Board.choices, default=Board.FEATURE)
    position = models.PositiveSmallIntegerField()
    is_live = models.BooleanField(default=False, help_text="Shipped and monitored.")
    is_done = models.BooleanField(default=False, help_text="Work here counts as finished.")
    is_delivery = models.BooleanField(
        default=False,
        help_text="Building, testing or shipping: a card waits here until its dependencies "
        "are finished. Stages before it are planning, which never waits.",
    )

    class Meta:
        ordering = ["board", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "key"], name="stage_key_unique_in_workspace"
            ),
            models.UniqueConstraint(
                fields=["workspace", "board", "position"], name="stage_position_unique_in_board"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace.slug}/{self.key}"

    @property
    def delivers(self) -> bool:
        """Work here is delivery (dependencies must be finished first), not planning."""
        return self.is_delivery or self.is_done or self.is_live


class Feature(models.Model):
    """One card of any kind. A card is locked exactly while it has an active run (derived by the
    pipeline layer, which owns runs: the card domain knows no runner)."""

    class Kind(models.TextChoices):
        FEATURE = "feature", "Feature"
        EPIC = "epic", "Epic"
        STORY = "story", "Story"
        TASK = "task", "Task"
        INCIDENT = "incident", "Incident"

    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        BLOCKED = "blocked", "Blocked"
        FAILED = "failed", "Failed"
        DONE = "done", "Done"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="features")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=20_000)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FEATURE)
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="features")
    position = models.PositiveIntegerField(default=0)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IDLE)
    # Why the card is where it is (a failed gate, an error): shown on the card.
    status_note = models.CharField(max_length=500, blank=True)
    health_check = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Optimistic lock for edits.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Generated work is keyed by the work: (parent, the stage whose list made it, the item's
    # key), so a rerun, retry or re-entry of that stage reconciles with the cards it made
    # before instead of making a second set. `source_run` made the card; `source_index` is its
    # place in the latest list; `source_removed_at` says the latest list no longer has it.
    source_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_key = models.CharField(max_length=220, blank=True)
    source_run = models.ForeignKey(
        "pipeline.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_index = models.PositiveIntegerField(null=True, blank=True)
    source_removed_at = models.DateTimeField(null=True, blank=True)
    # Archived cards leave the boards but keep their runs, artifacts and history; set and
    # cleared only by features.actions.do_set_archived (for a card and its whole subtree).
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # No join here: a default ORDER BY on the stage would join (and, under FOR UPDATE,
        # lock) the stage row in every query that does not order explicitly.
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["workspace", "stage", "position"])]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "source_stage", "source_key"],
                condition=~Q(source_key=""),
                name="feature_generated_once_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class Dependency(models.Model):
    """A task that cannot start before another is done (from generated task lists)."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="dependents")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feature", "depends_on"], name="dependency_unique"),
            models.CheckConstraint(
                condition=~Q(feature=models.F("depends_on")), name="dependency_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feature_id} depends on {self.depends_on_id}"


class HealthCheckResult(models.Model):
    """One run of a live card's health check (features/health.py); the history is kept."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="health_results")
    ok = models.BooleanField()
    detail = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["feature", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.feature_id} {'ok' if self.ok else 'failing'} at {self.checked_at}"


class StageTransition(models.Model):
    """Audit row for every move of a card, by a person or by a run."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_run = models.ForeignKey(
        "pipeline.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.feature_id}: {self.from_stage_id} → {self.to_stage_id}"

    @property
    def actor_label(self) -> str:
        if self.actor_run_id:
            return f"run #{self.actor_run_id}"
        if self.actor_user is not None:
            return self.actor_user.get_username()
        return "system"


class Artifact(models.Model):
    """Output of a run; versions per (feature, name) so two runs' outputs can be diffed."""

    class Kind(models.TextChoices):
        DOCUMENT = "document", "Document"
        FILE = "file", "File"
        URL = "url", "URL"
        PR = "pr", "Pull request"
        JSON = "json", "JSON"

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="artifacts")
    run = models.ForeignKey(
        "pipeline.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DOCUMENT)
    content = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    # The model stopped at its output limit while writing it: the content may be cut short.
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["feature", "name", "version"], name="artifact_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ApiToken(models.Model):
    """A person's token for scripts: only a hash of the secret is stored; it is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the secret, shown in lists so a person can tell tokens apart.
    prefix = models.CharField(max_length=8)
    token_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of the secret.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(models.Model):
    """An email-less invitation link: whoever opens it while logged in joins with `role`.

    The link carries a signed {id, key}; only a sha256 of the key is stored, so the link is
    shown once, when it is made. It works once (accepted_at), until expires_at, unless revoked.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    key_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of the link's key.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invitation #{self.pk} to {self.workspace} as {self.role}"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )
