"""The Runs & workers page's bulk panel: count, confirm with that count, watch the job."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from pipeline import bulk
from pipeline.models import BulkAction, Run
from tests.bulk_helpers import outage, run_in


def url(story, name, *args):
    return reverse(f"pipeline:{name}", args=[story.workspace.slug, *args])


def test_admins_see_the_bulk_panel_and_members_do_not(story):
    page = story.client_for(story.owner).get(url(story, "runs")).content.decode()
    assert 'id="bulk-heading"' in page
    assert '<option value="anthropic">' in page
    for who in (story.teammate, story.viewer):
        page = story.client_for(who).get(url(story, "runs")).content.decode()
        assert "bulk-heading" not in page


def test_the_count_and_sample_then_the_confirmed_job(story, no_enqueue):
    failed = outage(story.workspace, 3)
    run_in(story.workspace, "Other", provider="openai")
    client = story.client_for(story.owner)
    preview = client.get(
        url(story, "bulk_preview"), {"action": "retry", "provider": "anthropic", "status": ""}
    )
    assert preview.status_code == 200
    html = preview.content.decode()
    assert 'data-bulk-count="3"' in html
    assert "Retry 3 runs" in html
    assert [int(i) for i in re.findall(r'href="#run-(\d+)"', html)] == [
        r.pk for r in reversed(failed)
    ]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    assert hidden == {"action": "retry", "provider": "anthropic", "expected_count": "3"}

    with no_enqueue():
        started = client.post(url(story, "bulk_start"), hidden, HTTP_HX_REQUEST="true")
    assert started.status_code == 200
    assert "Bulk retry of 3 runs started" in started["HX-Trigger"]
    job = BulkAction.objects.get()
    assert (job.source, job.actor, job.total) == ("web", story.owner, 3)
    assert f'hx-get="{url(story, "bulk_job", job.pk)}" hx-trigger="every 1s"' in (
        started.content.decode()
    )

    with no_enqueue():
        bulk.process_chunk(job.pk)
    progress = client.get(url(story, "bulk_job", job.pk)).content.decode()
    assert 'data-bulk-progress="3/3"' in progress
    assert "hx-trigger" not in progress  # finished: it stops polling
    assert all(Run.objects.filter(parent_run=r).exists() for r in failed)


def test_a_changed_count_shows_the_new_count_to_confirm(story):
    outage(story.workspace, 2)
    client = story.client_for(story.owner)
    response = client.post(
        url(story, "bulk_start"), {"action": "retry", "expected_count": "5"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert 'data-bulk-count="2"' in response.content.decode()
    assert "2 runs match this filter now, not the 5 you confirmed" in response["HX-Trigger"]
    assert not BulkAction.objects.exists()


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"action": "explode"}, "Choose an action"),
        ({"action": "retry", "status": "running"}, "Retry acts on failed or cancelled runs"),
        ({"action": "retry", "created_after": "2026-13-01"}, "a date or time like"),
        ({"action": "retry"}, "Count the matching runs first"),
    ],
)
def test_bad_input_is_a_400_that_says_what_to_fix_and_writes_nothing(story, params, says):
    outage(story.workspace, 1)
    client = story.client_for(story.owner)
    response = client.post(url(story, "bulk_start"), params)
    assert response.status_code == 400
    assert says in response.content.decode()
    assert says in response["HX-Trigger"]
    assert not BulkAction.objects.exists()


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_members_and_viewers_get_a_403(story, who):
    outage(story.workspace, 1)
    client = story.client_for(getattr(story, who))
    assert client.get(url(story, "bulk_preview"), {"action": "retry"}).status_code == 403
    response = client.post(url(story, "bulk_start"), {"action": "retry", "expected_count": "1"})
    assert response.status_code == 403
    assert response.content.decode() == "Only workspace owners and admins can do this."
    assert "Only workspace owners and admins" in response["HX-Trigger"]
    assert not BulkAction.objects.exists()


def test_a_running_job_can_be_stopped_from_the_page(story, no_enqueue):
    outage(story.workspace, 2)
    with no_enqueue():
        job = bulk.start_bulk_action(
            story.workspace,
            story.owner,
            "retry",
            bulk.RunFilter(),
            expected_count=2,
            source="web",
        )
    client = story.client_for(story.owner)
    response = client.post(url(story, "bulk_cancel", job.pk))
    assert response.status_code == 200
    assert f"Bulk retry #{job.pk} stopped" in response["HX-Trigger"]
    assert client.post(url(story, "bulk_cancel", job.pk)).status_code == 409
    page = client.get(url(story, "runs")).content.decode()
    assert f'id="bulk-job-{job.pk}"' in page
