"""The skills catalog page (import, export, vet) and each stage's recipe editor.

Everyone in a workspace reads both; only its owners and admins change them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from features.access import get_workspace
from features.models import Membership, Stage, Workspace
from features.views.common import HtmxHttpRequest, with_toast
from skills import forms as recipe_forms
from skills.actions import SkillError, do_edit_prompt, do_save_recipe, do_vet_skill
from skills.bundles import BundleError, bundle_filename, export_bundle, import_bundle
from skills.models import Gate, Skill, StageRecipe
from skills.validation import Validation, validate_recipe

# --- Catalog --------------------------------------------------------------------------------


def _skills(workspace: Workspace) -> list[Skill]:
    """Latest version of each skill the workspace can use, its own before the built-ins."""
    rows = Skill.objects.filter(Q(workspace__isnull=True) | Q(workspace=workspace)).select_related(
        "vetted_by"
    )
    latest: dict[str, Skill] = {}
    for skill in rows.order_by("slug", "-workspace_id", "-version"):
        latest.setdefault(skill.slug, skill)
    return list(latest.values())


def _catalog_context(workspace: Workspace, membership: Membership) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "membership": membership,
        "skills": _skills(workspace),
        "import_form": recipe_forms.ImportBundleForm(),
    }


@login_required
@require_GET
def catalog(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    return render(request, "skills/catalog.html", _catalog_context(workspace, membership))


def _workspace_skill(workspace: Workspace, pk: int) -> Skill:
    return get_object_or_404(
        Skill.objects.filter(Q(workspace__isnull=True) | Q(workspace=workspace)), pk=pk
    )


@login_required
@require_GET
def export_skill(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, _ = get_workspace(request.user, slug)
    skill = _workspace_skill(workspace, pk)
    response = HttpResponse(export_bundle(skill), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{bundle_filename(skill)}"'
    return response


@login_required
@require_POST
def import_skill(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=True)
    form = recipe_forms.ImportBundleForm(request.POST, request.FILES)
    context = _catalog_context(workspace, membership)
    if not form.is_valid():
        return render(request, "skills/catalog.html", {**context, "import_form": form}, status=422)
    try:
        skill, created = import_bundle(form.cleaned_data["bundle"].read(), workspace)
    except BundleError as exc:
        form.add_error("bundle", str(exc))
        return render(request, "skills/catalog.html", {**context, "import_form": form}, status=422)
    verb = "Imported" if created else "Already up to date:"
    context = _catalog_context(workspace, membership)
    context["notice"] = f"{verb} {skill.slug} v{skill.version} ({skill.get_trust_display()})."
    return render(request, "skills/catalog.html", context)


@login_required
@require_POST
def vet_skill(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, _ = get_workspace(request.user, slug, admin=True)
    skill = _workspace_skill(workspace, pk)
    if skill.workspace_id is None and not request.user.is_superuser:
        raise PermissionDenied("Built-in skills are vetted by a site administrator.")
    do_vet_skill(skill, request.user)
    return redirect("skills:catalog", slug=workspace.slug)


# --- Recipe editor -----------------------------------------------------------------------------


def _stage_and_recipe(workspace: Workspace, key: str) -> tuple[Stage, StageRecipe]:
    stage = Stage.objects.filter(workspace=workspace, key=key).first()
    if stage is None:
        raise Http404("No such stage.")
    recipe = StageRecipe.objects.filter(stage=stage).select_related("stage").first()
    return stage, recipe or StageRecipe(stage=stage)


def _editor_context(
    workspace: Workspace,
    membership: Membership,
    recipe: StageRecipe,
    draft: recipe_forms.RecipeDraft,
    check: Validation | None,
) -> dict[str, Any]:
    if check is None and recipe.pk is not None:
        check = validate_recipe(recipe)
    return {
        "workspace": workspace,
        "membership": membership,
        "stage": recipe.stage,
        "recipe": recipe,
        "draft": draft,
        "check": check,
        "skills": _skills(workspace),
        "automations": StageRecipe.Automation.choices,
        "on_fails": StageRecipe.OnFail.choices,
        "gate_types": Gate.Type.choices,
        "prompt_steps": list(recipe.steps.select_related("skill").order_by("order"))
        if recipe.pk
        else [],
    }


@login_required
@require_http_methods(["GET", "POST"])
def recipe_editor(request: HtmxHttpRequest, slug: str, stage: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=request.method == "POST")
    _, recipe = _stage_and_recipe(workspace, stage)
    template = "skills/recipe.html#recipe-form" if request.htmx else "skills/recipe.html"
    if request.method == "GET":
        draft = recipe_forms.draft_from_recipe(recipe)
        context = _editor_context(workspace, membership, recipe, draft, None)
        return render(request, "skills/recipe.html", context)
    draft = recipe_forms.draft_from_post(request.POST)
    op = request.POST.get("op", "save")
    if op != "save":
        recipe_forms.apply_op(draft, op)
        recipe_forms.parse_draft(draft, workspace)  # resolves skills for the rows shown
        return render(
            request, template, _editor_context(workspace, membership, recipe, draft, None)
        )
    parsed = recipe_forms.parse_draft(draft, workspace)
    check = Validation(errors=list(parsed.errors))
    if not check.errors:
        check = do_save_recipe(
            recipe, parsed.settings, parsed.steps, parsed.gates, user=request.user
        )
    if check.errors:
        context = _editor_context(workspace, membership, recipe, draft, check)
        return render(request, template, {**context, "unsaved": True}, status=422)
    if not request.htmx:
        return redirect("skills:recipe", slug=workspace.slug, stage=stage)
    _, recipe = _stage_and_recipe(workspace, stage)
    draft = recipe_forms.draft_from_recipe(recipe)
    context = _editor_context(workspace, membership, recipe, draft, check)
    return with_toast(
        render(request, template, {**context, "saved": True}), "Recipe saved", "success"
    )


@login_required
@require_POST
def edit_prompt(request: HtmxHttpRequest, slug: str, stage: str, pk: int) -> HttpResponse:
    """A new prompt is a new skill version; this workspace's recipes move to it."""
    workspace, membership = get_workspace(request.user, slug, admin=True)
    _, recipe = _stage_and_recipe(workspace, stage)
    skill = _workspace_skill(workspace, pk)
    form = recipe_forms.PromptForm(request.POST)
    if not form.is_valid():
        return HttpResponse("A prompt is 1 to 50,000 characters.", status=422)
    if form.cleaned_data["prompt"] != skill.prompt_template:
        try:
            do_edit_prompt(skill, form.cleaned_data["prompt"], request.user, into=workspace)
        except SkillError as exc:
            context = _editor_context(
                workspace, membership, recipe, recipe_forms.draft_from_recipe(recipe), None
            )
            context["prompt_error"] = (skill.pk, str(exc))
            return render(request, "skills/recipe.html", context, status=422)
    return redirect("skills:recipe", slug=workspace.slug, stage=stage)
