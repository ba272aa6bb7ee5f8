"""Bulk actions in the admin: listed with their progress and per-run outcomes, never added
or edited there."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from pipeline import bulk
from pipeline.models import BulkAction
from tests.admin_helpers import admin_url
from tests.bulk_helpers import outage


def test_the_admin_lists_bulk_actions_read_only(story, no_enqueue):
    outage(story.workspace, 2)
    with no_enqueue():
        job = bulk.start_bulk_action(
            story.workspace, story.owner, "retry", bulk.RunFilter(), expected_count=2, source="web"
        )
        bulk.process_chunk(job.pk)
    console = Client()
    console.force_login(User.objects.create_superuser("root", "root@example.com", "password"))

    listing = console.get(admin_url(BulkAction, "changelist"))
    assert listing.status_code == 200
    assert "2 of 2" in listing.content.decode()
    page = console.get(admin_url(BulkAction, "change", job.pk))
    assert page.status_code == 200
    assert "Retrying as run #" in page.content.decode()
    assert console.get(admin_url(BulkAction, "add")).status_code == 403
    assert (
        console.post(admin_url(BulkAction, "change", job.pk), {"status": "queued"}).status_code
        == 403
    )
