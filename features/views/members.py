"""Workspaces and people in the product: new workspace, members page, invitation links.

The rules live in features.members; these views are its web door: a refused change is a 4xx
page or fragment with the reason, and writes nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from features import members
from features.access import get_workspace
from features.models import Invitation, Membership, Workspace
from features.stage_templates import TEMPLATES
from features.views.common import HtmxHttpRequest

Role = Membership.Role


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=120, strip=True)
    template = forms.ChoiceField(
        choices=Workspace.Template.choices, initial=Workspace.Template.DELIVERY
    )


class InvitationForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)
    days = forms.IntegerField(min_value=1, max_value=members.MAX_INVITATION_DAYS, initial=7)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def _templates() -> list[dict[str, Any]]:
    return [
        {"key": key, "label": label, "stages": [s.name for s in TEMPLATES[key]]}
        for key, label in Workspace.Template.choices
    ]


@login_required
@require_http_methods(["GET", "POST"])
def new_workspace(request: HtmxHttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            workspace = members.create_workspace(
                name=form.cleaned_data["name"],
                template=form.cleaned_data["template"],
                by=request.user,
            )
        except members.MemberError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("features:board", slug=workspace.slug)
    context = {"form": form, "templates": _templates()}
    status = 422 if form.errors else 200
    return render(request, "features/new_workspace.html", context, status=status)


def _members_context(workspace: Workspace, membership: Membership, **extra: Any) -> dict[str, Any]:
    invitations = (
        Invitation.objects.filter(workspace=workspace, accepted_at=None, revoked_at=None)
        .select_related("created_by")
        .order_by("-created_at")
        if membership.is_admin
        else Invitation.objects.none()
    )
    grantable = [
        (value, label)
        for value, label in Role.choices
        if value != Role.OWNER or membership.role == Role.OWNER
    ]
    return {
        "workspace": workspace,
        "membership": membership,
        "members": Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__username"),
        "invitations": [i for i in invitations if i.is_open],
        "roles": grantable,
        "invite_form": extra.pop("invite_form", None) or InvitationForm(),
        **extra,
    }


def _refused(
    request: HtmxHttpRequest, workspace: Workspace, membership: Membership, error: Exception
) -> HttpResponse:
    status = getattr(error, "status", 400)
    context = _members_context(workspace, membership, error=str(error))
    return render(request, "features/members.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def members_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    return render(request, "features/members.html", _members_context(workspace, membership))


@login_required
@require_POST
def invite(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=True)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        context = _members_context(workspace, membership, invite_form=form)
        return render(request, "features/members.html", context, status=422)
    try:
        invitation, token = members.create_invitation(
            workspace,
            role=form.cleaned_data["role"],
            by=request.user,
            days=form.cleaned_data["days"],
        )
    except members.MemberError as exc:
        return _refused(request, workspace, membership, exc)
    link = request.build_absolute_uri(f"/invitations/{token}")
    context = _members_context(workspace, membership, created=invitation, link=link)
    response = render(request, "features/members.html", context)
    add_never_cache_headers(response)  # the page holds a working link: no cache keeps a copy
    return response


@login_required
@require_POST
def revoke_invitation(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=True)
    invitation = get_object_or_404(Invitation, pk=pk, workspace=workspace)
    try:
        members.revoke_invitation(invitation, by=request.user)
    except members.MemberError as exc:
        return _refused(request, workspace, membership, exc)
    return redirect("people:members", slug=workspace.slug)


@login_required
@require_POST
def change_role(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug, admin=True)
    target = get_object_or_404(Membership, pk=pk, workspace=workspace)
    form = RoleForm(request.POST)
    if not form.is_valid():
        error = members.MemberError(f"Choose a role: {', '.join(Role.values)}.")
        return _refused(request, workspace, membership, error)
    try:
        members.change_role(target, form.cleaned_data["role"], by=request.user)
    except members.MemberError as exc:
        return _refused(request, workspace, membership, exc)
    return redirect("people:members", slug=workspace.slug)


@login_required
@require_POST
def remove_member(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = get_workspace(request.user, slug)
    target = get_object_or_404(Membership, pk=pk, workspace=workspace)
    try:
        members.remove_member(target, by=request.user)
    except members.MemberError as exc:
        return _refused(request, workspace, membership, exc)
    if target.user_id == request.user.pk:
        return redirect("features:home")  # they left: the workspace is no longer theirs
    return redirect("people:members", slug=workspace.slug)


@login_required
@require_http_methods(["GET", "POST"])
def accept(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """GET shows what the link is for; POST joins. Login first (the decorator sends people
    back here afterwards)."""
    try:
        invitation = members.invitation_for(token)
    except members.MemberError as exc:
        return render(request, "features/invitation.html", {"error": str(exc)}, status=exc.status)
    context: dict[str, Any] = {"invitation": invitation, "token": token}
    if request.method == "GET":
        problem = members.invitation_problem(invitation)
        already = Membership.objects.filter(
            workspace=invitation.workspace, user=request.user
        ).first()
        context.update(problem=problem, already=already)
        response = render(
            request, "features/invitation.html", context, status=410 if problem else 200
        )
        add_never_cache_headers(response)
        return response
    try:
        members.accept_invitation(token, request.user)
    except members.MemberError as exc:
        context["error"] = str(exc)
        return render(request, "features/invitation.html", context, status=exc.status)
    return redirect("features:board", slug=invitation.workspace.slug)
