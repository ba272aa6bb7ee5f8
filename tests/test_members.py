"""The members page: roles change and people leave or are removed; access ends at once.

Changes go through Membership.save()/delete() so the signals that close a removed person's
open sockets fire (checked here with a receiver); the HTTP pages refuse them on the next request.
"""

from __future__ import annotations

import pytest
from django.db.models.signals import post_delete, post_save

from audit.models import AuditEntry
from features.models import Membership, Workspace
from tests.factories import UserFactory


def members_url(story) -> str:
    return f"/w/{story.workspace.slug}/members/"


def membership(story, user) -> Membership:
    return Membership.objects.get(workspace=story.workspace, user=user)


def set_role(story, who, user, role):
    return story.client_for(who).post(
        f"/w/{story.workspace.slug}/members/{membership(story, user).pk}/role", {"role": role}
    )


def remove(story, who, user):
    return story.client_for(who).post(
        f"/w/{story.workspace.slug}/members/{membership(story, user).pk}/remove"
    )


@pytest.fixture
def signals():
    """The Membership signals fired (what closes open sockets listens to)."""
    fired: list[tuple[str, str]] = []

    def saved(sender, instance, created, **kwargs):
        fired.append(("save", instance.user.username))

    def deleted(sender, instance, **kwargs):
        fired.append(("delete", instance.user.username))

    post_save.connect(saved, sender=Membership, weak=False)
    post_delete.connect(deleted, sender=Membership, weak=False)
    yield fired
    post_save.disconnect(saved, sender=Membership)
    post_delete.disconnect(deleted, sender=Membership)


def test_every_member_sees_the_list_but_only_admins_the_controls(story):
    page = story.client_for(story.viewer).get(members_url(story)).content.decode()
    assert all(name in page for name in ("alice", "bob", "vera"))
    assert "Invite someone" not in page
    assert "/role" not in page

    page = story.client_for(story.owner).get(members_url(story)).content.decode()
    assert "Invite someone" in page
    assert "/role" in page


def test_an_outsider_gets_404(story):
    assert story.client_for(story.outsider).get(members_url(story)).status_code == 404


def test_a_role_change_takes_effect_on_the_next_request(story, signals):
    client = story.client_for(story.teammate)
    new_card = f"/w/{story.workspace.slug}/features/new"
    assert client.post(new_card, {}).status_code == 422  # past the door; the form is refused

    response = set_role(story, story.owner, story.teammate, "viewer")

    assert response.status_code == 302
    assert membership(story, story.teammate).role == "viewer"
    assert signals == [("save", "bob")]
    assert client.post(new_card, {}).status_code == 403  # the door itself refuses now
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.target_label) == ("member.role", story.owner, "bob")
    assert entry.changes == {"role": {"before": "member", "after": "viewer"}}


def test_a_removed_member_loses_access_at_once(story, signals):
    client = story.client_for(story.teammate)
    board = f"/w/{story.workspace.slug}/"
    assert client.get(board).status_code == 200

    response = remove(story, story.owner, story.teammate)

    assert response.status_code == 302
    assert signals == [("delete", "bob")]
    assert client.get(board).status_code == 404
    assert client.get(members_url(story)).status_code == 404
    assert client.get(f"/w/{story.workspace.slug}/runs/").status_code == 404
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_label, entry.changes) == (
        "member.remove",
        "bob",
        {"role": "member"},
    )


def test_a_member_can_leave(story):
    response = remove(story, story.teammate, story.teammate)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not Membership.objects.filter(user=story.teammate, workspace=story.workspace).exists()
    assert AuditEntry.objects.get().changes == {"role": "member", "left": True}


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_members_and_viewers_cannot_change_roles_or_remove_others(story, who):
    user = getattr(story, who)
    other = story.viewer if who == "teammate" else story.teammate
    assert set_role(story, user, other, "admin").status_code == 403
    assert remove(story, user, other).status_code == 403
    assert membership(story, other).role in ("viewer", "member")
    assert not AuditEntry.objects.exists()


@pytest.fixture
def admin(story):
    user = UserFactory.create(username="adam")
    Membership.objects.create(workspace=story.workspace, user=user, role="admin")
    return user


def test_an_admin_cannot_make_an_owner_or_touch_one(story, admin):
    assert set_role(story, admin, story.teammate, "owner").status_code == 403
    assert set_role(story, admin, story.owner, "member").status_code == 403
    assert remove(story, admin, story.owner).status_code == 403
    assert membership(story, story.owner).role == "owner"
    assert membership(story, story.teammate).role == "member"


def test_an_admin_manages_members_and_viewers(story, admin):
    assert set_role(story, admin, story.viewer, "member").status_code == 302
    assert remove(story, admin, story.teammate).status_code == 302
    assert membership(story, story.viewer).role == "member"


def test_the_last_owner_cannot_step_down_or_leave(story):
    response = set_role(story, story.owner, story.owner, "admin")
    assert response.status_code == 400
    assert "needs an owner" in response.content.decode()
    assert remove(story, story.owner, story.owner).status_code == 400
    assert membership(story, story.owner).role == "owner"


def test_an_owner_may_step_down_once_another_owner_exists(story):
    assert set_role(story, story.owner, story.teammate, "owner").status_code == 302
    assert set_role(story, story.owner, story.owner, "admin").status_code == 302
    assert membership(story, story.owner).role == "admin"


@pytest.mark.parametrize("role", ["emperor", "", "OWNER"])
def test_an_unknown_role_is_400_and_writes_nothing(story, role):
    response = set_role(story, story.owner, story.teammate, role)
    assert response.status_code == 400
    assert "Choose a role" in response.content.decode()
    assert membership(story, story.teammate).role == "member"


def test_a_membership_of_another_workspace_is_404(story):
    other = Workspace.objects.get(slug="charlies-team")
    foreign = Membership.objects.get(workspace=other)
    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/members/{foreign.pk}/remove"
    )
    assert response.status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()
