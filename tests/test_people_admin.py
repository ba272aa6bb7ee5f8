"""The admin's doors to members, invitations and the audit log: member changes made there are
logged (source "admin") and go through Membership.save()/delete(); invitations and the log
are read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import post_delete
from django.test import Client

from audit.log import record
from audit.models import AuditEntry
from features.members import create_invitation
from features.models import Invitation, Membership
from tests.admin_helpers import admin_url, form_data


@pytest.fixture
def console(db) -> Client:
    root = User.objects.create_superuser("root", "root@example.com", "password")
    client = Client()
    client.force_login(root)
    return client


def test_a_role_changed_in_the_admin_is_logged(story, console):
    membership = Membership.objects.get(user=story.teammate)
    url = admin_url(Membership, "change", membership.pk)

    response = console.post(url, form_data(console, url, role="viewer"))

    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_label, entry.source) == ("member.role", "root", "admin")
    assert entry.changes == {"role": {"before": "member", "after": "viewer"}}


def test_a_member_added_in_the_admin_is_logged(story, console):
    url = admin_url(Membership, "add")
    data = {"workspace": story.workspace.pk, "user": story.outsider.pk, "role": "member"}

    assert console.post(url, data).status_code == 302

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_label, entry.changes) == (
        "member.add",
        "charlie",
        {"role": "member"},
    )


def test_the_delete_action_removes_members_one_by_one_and_logs_each(story, console):
    deleted: list[str] = []

    def on_delete(sender, instance, **kwargs):
        deleted.append(instance.user.username)

    post_delete.connect(on_delete, sender=Membership, weak=False)
    try:
        ids = Membership.objects.filter(user__in=[story.teammate, story.viewer]).values_list(
            "pk", flat=True
        )
        response = console.post(
            admin_url(Membership, "changelist"),
            {"action": "delete_selected", "_selected_action": list(ids), "post": "yes"},
        )
    finally:
        post_delete.disconnect(on_delete, sender=Membership)

    assert response.status_code == 302
    assert sorted(deleted) == ["bob", "vera"]
    removed = AuditEntry.objects.filter(action="member.remove", source="admin")
    assert sorted(removed.values_list("target_label", flat=True)) == ["bob", "vera"]


def test_invitations_and_the_log_are_read_only(story, console):
    invitation, _ = create_invitation(story.workspace, role="viewer", by=story.owner)
    entry = record(workspace=story.workspace, actor=story.owner, action="card.move")

    assert console.get(admin_url(Invitation, "changelist")).status_code == 200
    page = console.get(admin_url(Invitation, "change", invitation.pk))
    assert page.status_code == 200
    assert invitation.key_hash not in page.content.decode()
    assert console.get(admin_url(Invitation, "add")).status_code == 403
    assert console.get(admin_url(AuditEntry, "changelist")).status_code == 200
    assert console.get(admin_url(AuditEntry, "change", entry.pk)).status_code == 200
    assert console.get(admin_url(AuditEntry, "add")).status_code == 403
    assert (
        console.post(admin_url(AuditEntry, "delete", entry.pk), {"post": "yes"}).status_code == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_a_run_retried_from_the_admin_is_logged_as_admin(story, console, no_enqueue):
    from pipeline.models import Run
    from tests.engine_helpers import card, stage

    feature = card(story.workspace, at="architecture")
    failed = Run.objects.create(
        workspace=story.workspace,
        feature=feature,
        stage=stage(story.workspace, "architecture"),
        status=Run.Status.FAILED,
        attempt=1,
    )
    with no_enqueue():
        console.post(
            admin_url(Run, "changelist"), {"action": "retry_runs", "_selected_action": [failed.pk]}
        )

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_label, entry.source) == ("run.retry", "root", "admin")
