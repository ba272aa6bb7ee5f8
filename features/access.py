"""The one door to workspace-scoped data: every view, API call and socket goes through here.

Outsiders get 404 (a workspace they cannot see does not exist for them); members without the
needed role get 403.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from features.models import Feature, Membership, Workspace

Role = Membership.Role
_WRITERS = {Role.OWNER, Role.ADMIN, Role.MEMBER}
_ADMINS = {Role.OWNER, Role.ADMIN}

AnyUser = User | AnonymousUser


def workspaces_for(user: AnyUser) -> QuerySet[Workspace]:
    if not user.is_authenticated:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user_id=user.pk)


def membership_for(user: AnyUser, workspace: Workspace) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user_id=user.pk, workspace=workspace).first()


def _check_role(membership: Membership, *, write: bool, admin: bool) -> None:
    if admin and membership.role not in _ADMINS:
        raise PermissionDenied("Only workspace owners and admins can do this.")
    if write and membership.role not in _WRITERS:
        raise PermissionDenied("Viewers can look but not change anything.")


def get_workspace(
    user: AnyUser, slug: str, *, write: bool = False, admin: bool = False
) -> tuple[Workspace, Membership]:
    if not user.is_authenticated:
        raise Http404("No such workspace.")
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user_id=user.pk, workspace__slug=slug)
        .first()
    )
    if membership is None:
        raise Http404("No such workspace.")
    _check_role(membership, write=write, admin=admin)
    return membership.workspace, membership


def get_feature(
    user: AnyUser, pk: int, *, write: bool = False, admin: bool = False
) -> tuple[Feature, Membership]:
    if not user.is_authenticated:
        raise Http404("No such feature.")
    feature = (
        Feature.objects.select_related("workspace", "stage")
        .filter(pk=pk, workspace__memberships__user_id=user.pk)
        .first()
    )
    if feature is None:
        raise Http404("No such feature.")
    membership = Membership.objects.get(user_id=user.pk, workspace_id=feature.workspace_id)
    _check_role(membership, write=write, admin=admin)
    return feature, membership
