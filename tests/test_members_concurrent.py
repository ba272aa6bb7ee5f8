"""People changes racing each other on PostgreSQL: a link is used once however many open it at
the same moment, and two owners stepping down at once leave one owner (no deadlock, no 500)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from features.members import create_invitation
from features.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"
)

PEOPLE = 6


def _logged_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_a_link_opened_by_many_at_once_admits_one(story):
    _, token = create_invitation(story.workspace, role="member", by=story.owner)
    clients = [_logged_in(UserFactory.create(username=f"p{n}")) for n in range(PEOPLE)]
    start = threading.Barrier(PEOPLE)

    def accept(client: Client) -> int:
        try:
            start.wait(timeout=30)
            return client.post(f"/invitations/{token}").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(PEOPLE) as pool:
        statuses = sorted(pool.map(accept, clients))

    assert statuses == [302] + [410] * (PEOPLE - 1)
    joined = Membership.objects.filter(workspace=story.workspace, user__username__regex=r"^p\d$")
    assert joined.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_owners_stepping_down_at_once_leave_one_owner(story):
    Membership.objects.filter(user=story.teammate).update(role="owner")
    start = threading.Barrier(2)

    def step_down(user) -> int:
        try:
            client = _logged_in(user)
            pk = Membership.objects.get(workspace=story.workspace, user=user).pk
            start.wait(timeout=30)
            url = f"/w/{story.workspace.slug}/members/{pk}/role"
            return client.post(url, {"role": "member"}).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(step_down, [story.owner, story.teammate]))

    assert statuses == [302, 400]
    owners = Membership.objects.filter(workspace=story.workspace, role="owner")
    assert owners.count() == 1
    assert re.match(r"^(alice|bob)$", owners.get().user.username)
