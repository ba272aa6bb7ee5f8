"""Invitation links: an owner or admin makes one with a role; a logged-in person opens it and
joins; it works once, until it expires, unless withdrawn."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from features import members
from features.models import Invitation, Membership
from tests.factories import UserFactory


def invite(story, who="owner", **data):
    data = {"role": "member", "days": "7"} | data
    return story.client_for(getattr(story, who)).post(
        f"/w/{story.workspace.slug}/members/invite", data
    )


def link_of(response) -> str:
    match = re.search(r"http://testserver(/invitations/[^<\s\"]+)", response.content.decode())
    assert match, "the page shows the link"
    return match.group(1)


@pytest.fixture
def dana(db):
    return UserFactory.create(username="dana")


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_owner_makes_a_link_and_a_person_joins_with_its_role(story, dana):
    response = invite(story, role="viewer")
    assert response.status_code == 200
    assert "shown only this once" in response.content.decode()
    path = link_of(response)

    page = client_of(dana).get(path)
    assert page.status_code == 200
    assert "as a <strong>viewer</strong>" in page.content.decode()

    joined = client_of(dana).post(path)
    assert joined.status_code == 302
    assert joined["Location"] == f"/w/{story.workspace.slug}/"
    assert Membership.objects.get(workspace=story.workspace, user=dana).role == "viewer"
    invitation = Invitation.objects.get()
    assert (invitation.accepted_by, invitation.accepted_at is not None) == (dana, True)
    assert client_of(dana).get(f"/w/{story.workspace.slug}/").status_code == 200
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor_label"))
    assert actions == [("invitation.create", "alice"), ("invitation.accept", "dana")]


def test_only_the_key_hash_is_stored(story):
    path = link_of(invite(story))
    invitation = Invitation.objects.get()
    assert invitation.key_hash not in path
    assert len(invitation.key_hash) == 64


def test_the_accept_page_asks_for_a_login_first(story):
    path = link_of(invite(story))
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/invitations/")


def test_a_link_works_once(story, dana):
    path = link_of(invite(story))
    client_of(dana).post(path)
    erin = UserFactory.create(username="erin")

    response = client_of(erin).post(path)

    assert response.status_code == 410
    assert "already used" in response.content.decode()
    assert not Membership.objects.filter(user=erin).exists()
    assert client_of(erin).get(path).status_code == 410


def test_an_expired_link_is_refused(story, dana):
    path = link_of(invite(story))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client_of(dana).post(path)

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(user=dana).exists()


def test_a_withdrawn_link_is_refused(story, dana):
    path = link_of(invite(story))
    invitation = Invitation.objects.get()
    withdraw = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/invitations/{invitation.pk}/revoke"
    )
    assert withdraw.status_code == 302

    response = client_of(dana).post(path)

    assert response.status_code == 410
    assert "withdrawn" in response.content.decode()
    assert AuditEntry.objects.filter(action="invitation.revoke").count() == 1


@pytest.mark.parametrize(
    "token",
    ["nonsense", "eyJpIjoxLCJrIjoieCJ9:forged:signature", "a" * 300],
)
def test_a_malformed_or_forged_token_is_404(story, dana, token):
    response = client_of(dana).post(f"/invitations/{token}")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_token_with_a_wrong_key_is_404(story, dana):
    from django.core import signing

    link_of(invite(story))
    invitation = Invitation.objects.get()
    forged = signing.dumps({"i": invitation.pk, "k": "guess"}, salt=members.INVITATION_SALT)
    assert client_of(dana).post(f"/invitations/{forged}").status_code == 404
    assert not Membership.objects.filter(user=dana).exists()


def test_a_member_opening_a_link_keeps_their_role_and_the_link(story):
    path = link_of(invite(story, role="admin"))
    response = story.client_for(story.viewer).post(path)
    assert response.status_code == 409
    assert Membership.objects.get(workspace=story.workspace, user=story.viewer).role == "viewer"
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_members_and_viewers_cannot_invite(story, who):
    assert invite(story, who=who).status_code == 403
    assert not Invitation.objects.exists()


def test_an_outsider_cannot_invite(story):
    assert invite(story, who="outsider").status_code == 404
    assert not Invitation.objects.exists()


def test_an_admin_cannot_invite_an_owner(story):
    Membership.objects.get(user=story.teammate).delete()
    admin = UserFactory.create(username="adam")
    Membership.objects.create(workspace=story.workspace, user=admin, role="admin")

    response = client_of(admin).post(
        f"/w/{story.workspace.slug}/members/invite", {"role": "owner", "days": "7"}
    )

    assert response.status_code == 403
    assert "Only an owner" in response.content.decode()
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    "data",
    [{"role": "emperor"}, {"days": "0"}, {"days": "31"}, {"days": "soon"}, {"role": ""}],
)
def test_bad_invitation_input_is_422_and_writes_nothing(story, data):
    response = invite(story, **data)
    assert response.status_code == 422
    assert not Invitation.objects.exists()
    assert not AuditEntry.objects.exists()
