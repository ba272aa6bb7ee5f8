"""The operator's console for workspaces and cards, where they meet the pipeline.

Creating a workspace or a card goes through ``features.actions`` and moving a card through
``pipeline.engine.move_feature`` (the writer the board uses), so a change made here leaves the
same stages, audit rows and board events as one made on the board.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import F, ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from features import events
from features.actions import do_create_workspace
from features.admin import ReadOnlyInline, adopt, narrow_stage_choices, operator
from features.models import Artifact, Feature, Membership, Stage, StageTransition, Workspace
from pipeline import engine
from pipeline.engine.workspace_settings import clean_setting
from pipeline.models import Run

# --- Workspaces ---------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        # Each row is titled with str(membership), which names the user and the workspace.
        return super().get_queryset(request).select_related("user", "workspace")


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ("board", "position", "key", "name", "is_delivery", "is_done", "is_live")
    ordering = ("board", "position")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Stage]:
        # Each row is titled with str(stage), which names the workspace.
        return super().get_queryset(request).select_related("workspace")


class WorkspaceAdminForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ("name", "slug", "template", *engine.WORKSPACE_SETTINGS)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.instance.pk is None:
            return cleaned
        # The settings writer's own rules, so a refused value is a form error, not a crash.
        for name in set(self.changed_data) & set(engine.WORKSPACE_SETTINGS):
            if name in cleaned:
                try:
                    clean_setting(self.instance, name, cleaned[name])
                except engine.EngineError as exc:
                    self.add_error(name, str(exc))
        return cleaned


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceAdminForm
    list_display = ("name", "slug", "template", "automation_mode", "stop_stage")
    list_filter = ("template", "automation_mode")
    search_fields = ("name", "slug")
    list_select_related = ("stop_stage__workspace",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at",)
    inlines = (MembershipInline, StageInline)

    def get_inlines(
        self, request: HttpRequest, obj: Workspace | None
    ) -> tuple[type[admin.options.InlineModelAdmin], ...]:
        # A new workspace gets its stages and owner from the template (do_create_workspace);
        # extra rows typed into the add form would collide with them.
        return tuple(self.inlines) if obj is not None else ()

    def get_exclude(self, request: HttpRequest, obj: Workspace | None = None) -> tuple[str, ...]:
        # No stages exist before the template creates them, so there is no stop stage to pick.
        return ("stop_stage",) if obj is None else ()

    def get_form(
        self,
        request: HttpRequest,
        obj: Workspace | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            narrow_stage_choices(form, "stop_stage", obj.pk)
        return form

    def save_model(
        self, request: HttpRequest, obj: Workspace, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            # Settings go through the writer the settings page uses (held runs resume when the
            # budget or run limit goes up); name and slug are the admin's own.
            settings = [n for n in form.changed_data if n in engine.WORKSPACE_SETTINGS]
            others = [n for n in form.changed_data if n not in engine.WORKSPACE_SETTINGS]
            if others:
                obj.save(update_fields=others)
            resumed = engine.update_workspace_settings(
                obj,
                {name: form.cleaned_data[name] for name in settings},
                user=operator(request),
            )
            if resumed:
                self.message_user(request, f"{resumed} waiting run(s) resumed.")
            return
        created = do_create_workspace(
            name=obj.name, slug=obj.slug, template=obj.template, owner=operator(request)
        )
        # The form's other settings (automation mode, budget, provider…) apply over the defaults.
        overrides = {
            name: getattr(obj, name)
            for name in form.changed_data
            if name not in ("name", "slug", "template")
        }
        adopt(obj, created)
        if overrides:
            for name, value in overrides.items():
                setattr(obj, name, value)
            obj.save(update_fields=list(overrides))


# --- Cards -------------------------------------------------------------------------------------


class TransitionInline(ReadOnlyInline):
    model = StageTransition
    fk_name = "feature"
    fields = ("created_at", "from_stage", "to_stage", "actor_label", "note")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[StageTransition]:
        return (
            super()
            .get_queryset(request)
            .select_related("from_stage__workspace", "to_stage__workspace", "actor_user")
        )


class ArtifactInline(ReadOnlyInline):
    model = Artifact
    fields = ("name", "version", "kind", "run", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Artifact]:
        # Only the columns shown: content can be a long document per version.
        return super().get_queryset(request).select_related("run__stage").defer("content", "data")


class FeatureAdminForm(forms.ModelForm):
    class Meta:
        model = Feature
        fields = ("workspace", "title", "description", "kind", "stage", "parent", "health_check")
        help_texts = {
            "stage": "Empty on a new card: the first column of its kind's board. Moving a card "
            "here records a transition but does not start the stage's automation.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "stage" in self.fields:
            self.fields["stage"].required = False

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        workspace = cleaned.get("workspace")
        workspace_id = workspace.pk if workspace is not None else self.instance.workspace_id
        if workspace_id is None:
            return cleaned
        stage: Stage | None = cleaned.get("stage")
        if stage is not None and stage.workspace_id != workspace_id:
            self.add_error("stage", "That stage belongs to another workspace.")
        parent: Feature | None = cleaned.get("parent")
        if parent is not None and parent.workspace_id != workspace_id:
            self.add_error("parent", "The parent card belongs to another workspace.")
        if parent is not None and parent.pk == self.instance.pk:
            self.add_error("parent", "A card cannot be its own parent.")
        if (
            self.instance.pk
            and "stage" in self.changed_data
            and Run.objects.filter(feature=self.instance, status__in=Run.ACTIVE_STATUSES).exists()
        ):
            self.add_error(
                "stage", "This card has an active run; stop its pipeline before moving it."
            )
        return cleaned


@admin.register(Feature)
class FeatureAdmin(admin.ModelAdmin):
    form = FeatureAdminForm
    list_display = ("id", "title", "workspace", "kind", "stage", "status", "parent", "updated_at")
    list_display_links = ("id", "title")
    list_filter = ("kind", "status", "workspace")
    search_fields = ("title",)
    list_select_related = ("workspace", "stage__workspace", "parent")
    raw_id_fields = ("parent", "source_run")
    inlines = (TransitionInline, ArtifactInline)
    # What the pipeline and the board own: a status typed here would contradict the card's runs.
    owned_by_product = (
        "workspace",
        "position",
        "status",
        "status_note",
        "version",
        "created_by",
        "source_run",
        "source_index",
        "created_at",
        "updated_at",
    )

    def get_fields(self, request: HttpRequest, obj: Feature | None = None) -> tuple[str, ...]:
        if obj is None:
            # Health checks are written by monitoring once the card is live.
            return ("workspace", "title", "description", "kind", "stage", "parent")
        return (
            "workspace",
            "title",
            "description",
            "kind",
            "stage",
            "position",
            "status",
            "status_note",
            "parent",
            "health_check",
            "version",
            "created_by",
            "source_run",
            "source_index",
            "created_at",
            "updated_at",
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Feature | None = None
    ) -> tuple[str, ...]:
        return self.owned_by_product if obj is not None else ()

    def get_inlines(
        self, request: HttpRequest, obj: Feature | None
    ) -> tuple[type[admin.options.InlineModelAdmin], ...]:
        return tuple(self.inlines) if obj is not None else ()

    def get_form(
        self, request: HttpRequest, obj: Feature | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            narrow_stage_choices(form, "stage", obj.workspace_id)
        return form

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.name == "stage":
            # Stage labels name their workspace: one query for the dropdown, not one per stage.
            kwargs["queryset"] = Stage.objects.select_related("workspace")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: Feature, form: forms.ModelForm, change: bool
    ) -> None:
        user = operator(request)
        if not change:
            created = engine.create_feature(
                obj.workspace,
                title=obj.title,
                user=user,
                description=obj.description,
                kind=obj.kind,
                parent=obj.parent,
                stage=obj.stage if obj.stage_id is not None else None,
            )
            adopt(obj, created.feature)
            return
        edited = [name for name in form.changed_data if name != "stage"]
        if edited:
            # Bump the optimistic lock, so an edit form open on the board refuses to overwrite.
            obj.version = F("version") + 1
            obj.save(update_fields=[*edited, "version", "updated_at"])
            obj.refresh_from_db(fields=["version", "updated_at"])
            events.card_changed_on_commit(obj)
        if "stage" in form.changed_data:
            # The card is moved as a person moves it (transition row, column renumbered), but an
            # operator repairing a card should not set off the new stage's automation.
            engine.move_feature(
                obj, obj.stage, user=user, note="Moved in the admin", start_automation=False
            )
            obj.refresh_from_db()
