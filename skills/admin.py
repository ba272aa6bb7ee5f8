"""The operator's console for the skills catalog and each stage's recipe.

A recipe is saved with its steps and gates through ``skills.actions.do_save_recipe``, the
writer the editor and the API use: the same validation, and no step change under a running
stage. Steps and gates are edited on their recipe's page; their own lists are read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from features.admin import operator
from features.models import Workspace
from skills import bundles
from skills.actions import RecipeSettings, do_save_recipe, do_vet_skill
from skills.models import Gate, RecipeStep, Skill, StageRecipe
from skills.validation import GateDraft, StepDraft, gate_problem

# A skill version is immutable once stored: past runs point at it and sync compares its checksum,
# so a fix is a new version (edit the SKILL.md folder and sync), never an edit of this row.
SKILL_CONTENT_FIELDS = (
    "workspace",
    "slug",
    "version",
    "name",
    "description",
    "source",
    "output",
    "artifact_name",
    "prompt_template",
    "input_schema",
    "output_schema",
    "tags",
    "checksum",
)


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ("slug", "version", "name", "workspace", "trust", "output", "source")
    list_filter = ("trust", "output", "source", "workspace")
    search_fields = ("slug", "name", "description")
    list_select_related = ("workspace",)
    actions = ("vet_skills", "export_bundle")

    @admin.action(description="Vet selected skills (records you and now)")
    def vet_skills(self, request: HttpRequest, queryset: QuerySet[Skill]) -> None:
        skills = list(queryset)
        for skill in skills:
            do_vet_skill(skill, operator(request))
        self.message_user(request, f"Vetted {len(skills)} skill version(s).", messages.SUCCESS)

    @admin.action(description="Export as a bundle (.zip, one skill)")
    def export_bundle(self, request: HttpRequest, queryset: QuerySet[Skill]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one skill to export.", messages.ERROR)
            return None
        skill = queryset.get()
        response = HttpResponse(bundles.export_bundle(skill), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{bundles.bundle_filename(skill)}"'
        return response

    def get_readonly_fields(
        self, request: HttpRequest, obj: Skill | None = None
    ) -> tuple[str, ...]:
        stamped = ("vetted_by", "vetted_at", "created_at")
        return (*SKILL_CONTENT_FIELDS, *stamped) if obj is not None else stamped

    def save_model(
        self, request: HttpRequest, obj: Skill, form: forms.ModelForm, change: bool
    ) -> None:
        # Vetting is a person's decision: record who made it, and forget it when it is withdrawn.
        if "trust" in form.changed_data or not change:
            if obj.is_vetted:
                obj.vetted_by, obj.vetted_at = operator(request), timezone.now()
            else:
                obj.vetted_by, obj.vetted_at = None, None
        super().save_model(request, obj, form, change)


def check_vetted(recipe: StageRecipe, skills: list[Skill]) -> None:
    """DESIGN: a fully automatic recipe uses only vetted skills, since nobody reviews its output."""
    if recipe.automation != StageRecipe.Automation.FULLY_AUTO:
        return
    unvetted = [str(skill) for skill in skills if not skill.is_vetted]
    if unvetted:
        raise ValidationError(
            f"Fully automatic recipes may only use vetted skills, and {', '.join(unvetted)} "
            "is not. Vet the skill or choose a level where a person reviews the result."
        )


class RecipeStepFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # The recipe form already holds the new automation level when its inlines are cleaned.
        check_vetted(
            self.instance,
            [
                form.cleaned_data["skill"]
                for form in self.forms
                if form.cleaned_data.get("skill") and not form.cleaned_data.get("DELETE")
            ],
        )


class RecipeStepForm(forms.ModelForm):
    class Meta:
        model = RecipeStep
        fields = (
            "recipe",
            "order",
            "skill",
            "provider",
            "model",
            "timeout_seconds",
            "retry_count",
            "params",
            "input_mapping",
            "output_mapping",
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("recipe") and cleaned.get("skill"):
            check_vetted(cleaned["recipe"], [cleaned["skill"]])
        return cleaned


class RecipeStepInline(admin.TabularInline):
    model = RecipeStep
    formset = RecipeStepFormSet
    extra = 0
    fields = (
        "order",
        "skill",
        "provider",
        "model",
        "timeout_seconds",
        "retry_count",
        "params",
        "input_mapping",
        "output_mapping",
    )
    autocomplete_fields = ("skill",)
    ordering = ("order",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecipeStep]:
        return super().get_queryset(request).select_related("skill")


class GateForm(forms.ModelForm):
    """The editor's and the executor's check: a gate config that cannot be evaluated is refused."""

    class Meta:
        model = Gate
        fields = ("recipe", "order", "name", "type", "config", "required", "failure_message")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("type"):
            problem = gate_problem(
                GateDraft(cleaned.get("name") or "", cleaned["type"], cleaned.get("config"))
            )
            if problem:
                raise ValidationError(f"Gate config: {problem}.")
        return cleaned


class GateInline(admin.TabularInline):
    model = Gate
    form = GateForm
    extra = 0
    fields = ("order", "name", "type", "config", "required", "failure_message")
    ordering = ("order", "id")


def _rows(formset: BaseInlineFormSet) -> list[dict[str, Any]]:
    return [
        form.cleaned_data
        for form in formset.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE")
    ]


@admin.register(StageRecipe)
class StageRecipeAdmin(admin.ModelAdmin):
    list_display = ("stage", "workspace", "automation", "on_fail", "provider", "model", "enabled")
    list_filter = ("automation", "on_fail", "enabled", "stage__workspace")
    search_fields = ("stage__key", "stage__name", "stage__workspace__slug")
    list_select_related = ("stage__workspace",)
    autocomplete_fields = ("stage",)
    readonly_fields = ("updated_at",)
    inlines = (RecipeStepInline, GateInline)

    @admin.display(description="workspace", ordering="stage__workspace__name")
    def workspace(self, obj: StageRecipe) -> Workspace:
        return obj.stage.workspace

    def save_model(
        self, request: HttpRequest, obj: StageRecipe, form: forms.ModelForm, change: bool
    ) -> None:
        """Nothing yet: the recipe is saved with its steps and gates in save_related."""

    def save_related(
        self,
        request: HttpRequest,
        form: forms.ModelForm,
        formsets: list[BaseInlineFormSet],
        change: bool,
    ) -> None:
        recipe: StageRecipe = form.instance
        steps: list[StepDraft] | None = None
        gates: list[GateDraft] | None = None
        for formset in formsets:
            # What the admin's change message reads (formset.save() is not called).
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is RecipeStep:
                rows = sorted(_rows(formset), key=lambda r: r.get("order") or 0)
                steps = [
                    StepDraft(
                        slug=row["skill"].slug,
                        skill=row["skill"],
                        params=row.get("params") or {},
                        input_mapping=row.get("input_mapping") or {},
                        output_mapping=row.get("output_mapping") or {},
                        provider=row.get("provider") or "",
                        model=row.get("model") or "",
                        timeout_seconds=row["timeout_seconds"],
                        retry_count=row["retry_count"],
                    )
                    for row in rows
                ]
            elif formset.model is Gate:
                rows = sorted(_rows(formset), key=lambda r: r.get("order") or 0)
                gates = [
                    GateDraft(
                        name=row["name"],
                        type=row["type"],
                        config=row.get("config") or {},
                        required=bool(row.get("required")),
                        failure_message=row.get("failure_message") or "",
                    )
                    for row in rows
                ]
        saving = recipe
        if recipe.pk is None:
            saving = StageRecipe(stage=recipe.stage)
        check = do_save_recipe(
            saving, RecipeSettings.of(recipe), steps, gates, user=operator(request)
        )
        if check.errors:
            self.message_user(request, f"Not saved: {' '.join(check.errors)}", messages.ERROR)
            return
        if recipe.pk is None:
            recipe.pk = StageRecipe.objects.get(stage=recipe.stage).pk


class ReadOnlyThroughRecipe(admin.ModelAdmin):
    """Steps and gates change with their recipe (its page), never one by one."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RecipeStep)
class RecipeStepAdmin(ReadOnlyThroughRecipe):
    list_display = ("recipe", "order", "skill", "provider", "model", "timeout_seconds")
    list_filter = ("recipe__stage__workspace", "skill__slug")
    search_fields = ("skill__slug", "recipe__stage__key")
    list_select_related = ("recipe__stage__workspace", "skill")


@admin.register(Gate)
class GateAdmin(ReadOnlyThroughRecipe):
    list_display = ("name", "recipe", "type", "required", "order")
    list_filter = ("type", "required", "recipe__stage__workspace")
    search_fields = ("name", "recipe__stage__key")
    list_select_related = ("recipe__stage__workspace",)
