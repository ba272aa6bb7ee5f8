"""Workspaces and their people: create a workspace, invite by link, change roles, remove.

Every function takes the person acting (`by`) and checks their role itself, so each door (the
members page, the admin, a future API) gets the same rules:

- owners and admins manage members and invitations; members and viewers cannot;
- only an owner may make someone an owner, or change or remove an owner;
- a workspace always keeps at least one owner.

Role changes and removals go through Membership.save() / .delete() (never queryset.update or
delete), so the post_save / post_delete signals that end a removed person's open pages fire.
Each change is written to the workspace's audit log. Errors raise MemberError with a message
a person can act on; nothing is written then.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.log import Target, record
from features.actions import FeatureError, do_create_workspace
from features.models import Invitation, Membership, Workspace

Role = Membership.Role
INVITATION_SALT = "runway.invitation"
INVITATION_DAYS = 7
MAX_INVITATION_DAYS = 30
_MANAGERS = {Role.OWNER, Role.ADMIN}


class MemberError(Exception):
    """A change to a workspace's people that cannot be made; the message says why."""

    status = 400


class NotAllowed(MemberError):
    status = 403


def _membership_of(user: User, workspace: Workspace) -> Membership:
    membership = Membership.objects.filter(workspace=workspace, user=user).first()
    if membership is None or membership.role not in _MANAGERS:
        raise NotAllowed("Only workspace owners and admins can manage members.")
    return membership


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise MemberError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    return role


def _check_may_grant(acting: Membership, role: str) -> None:
    if role == Role.OWNER and acting.role != Role.OWNER:
        raise NotAllowed("Only an owner can make someone an owner.")


def _person(membership: Membership) -> Target:
    return Target("user", membership.user_id, membership.user.get_username())


# --- Workspaces --------------------------------------------------------------------------------


def create_workspace(*, name: str, template: str, by: User, slug: str = "") -> Workspace:
    """A new workspace from a stage template (features.stage_templates), owned by `by`.

    Raises MemberError for an empty or over-long name, an unknown template or a taken address.
    """
    name = name.strip()
    if not name or len(name) > 120:
        raise MemberError("A workspace name is 1 to 120 characters.")
    try:
        with transaction.atomic():
            workspace = do_create_workspace(
                name=name, template=template, owner=by, slug=slug or None
            )
            record(
                workspace=workspace,
                actor=by,
                action="workspace.create",
                target=Target("workspace", workspace.pk, workspace.name),
                changes={"template": template, "slug": workspace.slug},
            )
    except FeatureError as exc:
        raise MemberError(str(exc)) from exc
    except IntegrityError as exc:  # the same address taken at the same moment
        raise MemberError("That address was just taken; choose another name.") from exc
    return workspace


# --- Invitations -------------------------------------------------------------------------------


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_invitation(
    workspace: Workspace, *, role: str, by: User, days: int = INVITATION_DAYS
) -> tuple[Invitation, str]:
    """An invitation link's row and its token (for /invitations/<token>), shown only once.

    The token is a signed {"i": invitation id, "k": 256-bit key}; the row keeps the key's
    sha256. Raises NotAllowed (not an owner/admin; an admin inviting an owner) or MemberError.
    """
    acting = _membership_of(by, workspace)
    _check_may_grant(acting, _check_role(role))
    if not 1 <= days <= MAX_INVITATION_DAYS:
        raise MemberError(f"An invitation lasts 1 to {MAX_INVITATION_DAYS} days.")
    key = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            workspace=workspace,
            role=role,
            key_hash=_hash(key),
            created_by=by,
            expires_at=timezone.now() + timedelta(days=days),
        )
        record(
            workspace=workspace,
            actor=by,
            action="invitation.create",
            target=Target("invitation", invitation.pk, f"Invitation #{invitation.pk}"),
            changes={"role": role, "expires_at": invitation.expires_at},
        )
    token = signing.dumps({"i": invitation.pk, "k": key}, salt=INVITATION_SALT, compress=False)
    return invitation, token


def invitation_for(token: str) -> Invitation:
    """The invitation a token names, whatever its state. Raises MemberError (404) for a token
    that is malformed, tampered with or unknown."""
    try:
        data: Any = signing.loads(token, salt=INVITATION_SALT)
        pk, key = int(data["i"]), str(data["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise _not_found() from None
    invitation = Invitation.objects.select_related("workspace").filter(pk=pk).first()
    if invitation is None or not hmac.compare_digest(invitation.key_hash, _hash(key)):
        raise _not_found()
    return invitation


def _not_found() -> MemberError:
    error = MemberError("This invitation link is not valid; ask for a new one.")
    error.status = 404
    return error


def invitation_problem(invitation: Invitation) -> str:
    """Why the invitation can no longer be used, or "" while it can."""
    if invitation.revoked_at is not None:
        return "This invitation was withdrawn; ask for a new one."
    if invitation.accepted_at is not None:
        return "This invitation was already used; each link works once. Ask for a new one."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired; ask for a new one."
    return ""


def accept_invitation(token: str, user: User) -> Membership:
    """Join the invitation's workspace with its role; the link is used up.

    Raises MemberError: 404 for a bad token, 410 for one expired, used or withdrawn, 409 when
    `user` is a member already (the link stays usable for someone else).
    """
    invitation = invitation_for(token)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        problem = invitation_problem(invitation)
        if problem:
            error = MemberError(problem)
            error.status = 410
            raise error
        existing = Membership.objects.filter(workspace=invitation.workspace, user=user).first()
        if existing is not None:
            error = MemberError(
                f"You are already a member of {invitation.workspace.name} "
                f"({existing.get_role_display().lower()})."
            )
            error.status = 409
            raise error
        membership = Membership(workspace=invitation.workspace, user=user, role=invitation.role)
        membership.save()
        invitation.accepted_by, invitation.accepted_at = user, timezone.now()
        invitation.save(update_fields=["accepted_by", "accepted_at"])
        record(
            workspace=invitation.workspace,
            actor=user,
            action="invitation.accept",
            target=_person(membership),
            changes={"role": invitation.role, "invitation": invitation.pk},
        )
    return membership


def revoke_invitation(invitation: Invitation, *, by: User) -> Invitation:
    """Withdraw an unused invitation. Raises NotAllowed, or MemberError when already used."""
    _membership_of(by, invitation.workspace)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise MemberError("This invitation was already used; remove the member instead.")
        if invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
            record(
                workspace=invitation.workspace,
                actor=by,
                action="invitation.revoke",
                target=Target("invitation", invitation.pk, f"Invitation #{invitation.pk}"),
                changes={"role": invitation.role},
            )
    return invitation


# --- Roles and removal -------------------------------------------------------------------------


def _lock_people_of(workspace_id: int) -> None:
    """Role changes and removals in one workspace take turns (its row is the lock), so two
    owners stepping down at once cannot both pass the last-owner check, nor deadlock."""
    Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("pk").first()


def _check_owner_left(membership: Membership) -> None:
    """Refuse to leave a workspace without owners (call under _lock_people_of)."""
    if membership.role != Role.OWNER:
        return
    owners = Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.OWNER)
    if owners.count() <= 1:
        raise MemberError("A workspace needs an owner: make someone else owner first.")


def change_role(membership: Membership, role: str, *, by: User) -> Membership:
    """Give a member another role, through Membership.save() (see the module docstring).

    Raises NotAllowed (not an owner/admin; an admin touching an owner or granting owner) or
    MemberError (unknown role; the last owner).
    """
    _check_role(role)
    acting = _membership_of(by, membership.workspace)
    with transaction.atomic():
        _lock_people_of(membership.workspace_id)
        locked = Membership.objects.select_for_update().select_related("user", "workspace")
        membership = locked.get(pk=membership.pk)
        if membership.role == role:
            return membership
        if membership.role == Role.OWNER and acting.role != Role.OWNER:
            raise NotAllowed("Only an owner can change an owner's role.")
        _check_may_grant(acting, role)
        _check_owner_left(membership)
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        record(
            workspace=membership.workspace,
            actor=by,
            action="member.role",
            target=_person(membership),
            changes={"role": {"before": before, "after": role}},
        )
    return membership


def remove_member(membership: Membership, *, by: User) -> None:
    """Take a person out of the workspace (Membership.delete(); their open pages lose access).

    Anyone may leave on their own; removing someone else needs an owner or admin, and an owner
    can only be removed by an owner. Raises NotAllowed or MemberError (the last owner).
    """
    workspace = membership.workspace
    leaving = membership.user_id == by.pk
    acting = membership if leaving else _membership_of(by, workspace)
    with transaction.atomic():
        _lock_people_of(workspace.pk)
        locked = Membership.objects.select_for_update().select_related("user", "workspace")
        membership = locked.get(pk=membership.pk)
        if membership.role == Role.OWNER and acting.role != Role.OWNER:
            raise NotAllowed("Only an owner can remove an owner.")
        _check_owner_left(membership)
        target = _person(membership)
        role = membership.role
        membership.delete()
        record(
            workspace=workspace,
            actor=by,
            action="member.remove",
            target=target,
            changes={"role": role} | ({"left": True} if leaving else {}),
        )
