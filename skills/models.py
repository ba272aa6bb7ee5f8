"""The skills catalog and each stage's recipe: which skills run, how, and what must hold after."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Skill(models.Model):
    """One version of a skill. A new version is a new row: past runs keep pointing at theirs."""

    class Source(models.TextChoices):
        LOCAL = "local", "Local folder"
        IMPORTED = "imported", "Imported bundle"

    class Trust(models.TextChoices):
        VETTED = "vetted", "Vetted"
        COMMUNITY = "community", "Community"
        EXPERIMENTAL = "experimental", "Experimental"

    class Output(models.TextChoices):
        DOCUMENT = "document", "Markdown document"
        TASKS = "tasks", "JSON task list (becomes child cards)"
        SCORE = "score", "Numeric score"

    # Empty workspace: a built-in skill every workspace can use.
    workspace = models.ForeignKey(
        "features.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="skills"
    )
    slug = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LOCAL)
    trust = models.CharField(max_length=15, choices=Trust.choices, default=Trust.EXPERIMENTAL)
    output = models.CharField(max_length=10, choices=Output.choices, default=Output.DOCUMENT)
    artifact_name = models.CharField(
        max_length=200, blank=True, help_text="Where the output is stored, e.g. spec.md."
    )
    prompt_template = models.TextField(blank=True)
    input_schema = models.JSONField(default=dict, blank=True)
    output_schema = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    vetted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    vetted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [
            # NULL workspaces are distinct in a plain unique index, so built-ins need their own.
            models.UniqueConstraint(
                fields=["slug", "version"],
                condition=Q(workspace__isnull=True),
                name="skill_builtin_version_unique",
            ),
            models.UniqueConstraint(
                fields=["workspace", "slug", "version"],
                condition=Q(workspace__isnull=False),
                name="skill_workspace_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug} v{self.version}"

    @property
    def is_vetted(self) -> bool:
        return self.trust == self.Trust.VETTED


class StageRecipe(models.Model):
    class Automation(models.TextChoices):
        FULLY_AUTO = "fully_auto", "Fully automatic"
        AUTO_NOTIFY = "auto_notify", "Automatic, result waits for accept/reject"
        HUMAN_APPROVAL = "human_approval", "Waits for a person to start it"
        MANUAL = "manual", "Manual"

    class OnFail(models.TextChoices):
        STAY = "stay", "Stay in the stage"
        REVERT = "revert", "Move back to the previous stage"
        CREATE_QUESTIONS = "create_questions", "Stay and open a questions card"
        REVIEW_REQUIRED = "review_required", "Stay and wait for review"

    stage = models.OneToOneField("features.Stage", on_delete=models.CASCADE, related_name="recipe")
    automation = models.CharField(
        max_length=20, choices=Automation.choices, default=Automation.FULLY_AUTO
    )
    on_fail = models.CharField(max_length=20, choices=OnFail.choices, default=OnFail.STAY)
    provider = models.CharField(max_length=30, blank=True, help_text="Empty: workspace default.")
    model = models.CharField(max_length=100, blank=True, help_text="Empty: workspace default.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"recipe for {self.stage}"


class RecipeStep(models.Model):
    recipe = models.ForeignKey(StageRecipe, on_delete=models.CASCADE, related_name="steps")
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="recipe_steps")
    order = models.PositiveSmallIntegerField()
    params = models.JSONField(default=dict, blank=True)
    input_mapping = models.JSONField(default=dict, blank=True)
    output_mapping = models.JSONField(default=dict, blank=True)
    provider = models.CharField(max_length=30, blank=True, help_text="Empty: the recipe's.")
    model = models.CharField(max_length=100, blank=True, help_text="Empty: the recipe's.")
    timeout_seconds = models.PositiveIntegerField(default=300)
    retry_count = models.PositiveSmallIntegerField(default=2)

    class Meta:
        ordering = ["order"]
        constraints = [
            models.UniqueConstraint(fields=["recipe", "order"], name="recipe_step_order_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.order}. {self.skill}"


class Gate(models.Model):
    class Type(models.TextChoices):
        FILE_EXISTS = "file_exists", "File exists"
        CONTENT_CHECK = "content_check", "Content has required sections"
        ARTIFACT_EXISTS = "artifact_exists", "Artifact exists"
        METRIC_THRESHOLD = "metric_threshold", "Metric meets threshold"

    recipe = models.ForeignKey(StageRecipe, on_delete=models.CASCADE, related_name="gates")
    name = models.CharField(max_length=120)
    type = models.CharField(max_length=20, choices=Type.choices)
    config = models.JSONField(default=dict, blank=True)
    required = models.BooleanField(default=True)
    failure_message = models.CharField(max_length=300, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name
