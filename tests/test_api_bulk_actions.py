"""/api/bulk-actions: dry run, confirm with the count, progress, cancel; owners and admins."""

from __future__ import annotations

import pytest

from features.models import Membership
from pipeline import bulk
from pipeline.models import BulkAction, Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.bulk_helpers import outage, run_in
from tests.factories import UserFactory, add_member


@pytest.fixture(autouse=True)
def _fresh_launch_counts():
    reset_launch_limits()


def post(client, path, body):
    return client.post(f"/api/bulk-actions{path}", body, content_type="application/json")


def body(story, action="retry", **extra):
    return {"workspace": story.workspace.slug, "action": action, **extra}


def test_the_dry_run_counts_and_samples_without_writing(story):
    failed = outage(story.workspace, 12)
    run_in(story.workspace, "Other", provider="openai")
    response = post(
        api_client(story.owner), "/preview", body(story, filter={"provider": "anthropic"})
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["count"], data["filter"]) == (12, {"provider": "anthropic"})
    assert [r["id"] for r in data["sample"]] == [r.pk for r in reversed(failed)][:10]
    assert not BulkAction.objects.exists()
    assert not Run.objects.filter(parent_run__isnull=False).exists()


def test_confirming_starts_one_job_and_its_progress_can_be_read(story, no_enqueue):
    failed = outage(story.workspace, 3)
    client = api_client(story.owner)
    with no_enqueue():
        response = post(
            client, "", body(story, filter={"error_kind": "transient"}, expected_count=3)
        )
        assert response.status_code == 202, response.content
        job = response.json()
        assert (job["status"], job["total"], job["done"], job["actor"]) == ("queued", 3, 0, "alice")
        assert job["source"] == "api"
        bulk.process_chunk(job["id"])

    detail = client.get(f"/api/bulk-actions/{job['id']}").json()
    assert (detail["status"], detail["done"], detail["pending"]) == ("succeeded", 3, 0)
    new_runs = {r.pk: Run.objects.get(parent_run=r).pk for r in failed}
    assert {i["run"]: i["new_run"] for i in detail["items"]} == new_runs
    listed = client.get(f"/api/bulk-actions?workspace={story.workspace.slug}").json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]


def test_a_changed_count_is_a_409_that_says_how_many_match_now(story):
    outage(story.workspace, 3)
    response = post(api_client(story.owner), "", body(story, expected_count=5))
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "count_changed"
    assert error["message"].startswith("3 runs match this filter now, not the 5 you confirmed")
    assert not BulkAction.objects.exists()


@pytest.mark.parametrize(
    ("filters", "field", "says"),
    [
        ({"status": "succeeded"}, "filter.status", "Retry acts on failed or cancelled runs"),
        ({"stage": "moon"}, "filter.stage", "Unknown stage 'moon'"),
        ({"created_after": "soon"}, "filter.created_after", "a date or time like"),
    ],
)
def test_bad_filter_input_is_a_400_that_writes_nothing(story, filters, field, says):
    outage(story.workspace, 2)
    for path, extra in (("/preview", {}), ("", {"expected_count": 2})):
        response = post(api_client(story.owner), path, body(story, filter=filters, **extra))
        assert response.status_code == 400
        error = error_of(response)
        assert (error["code"], error["field"]) == ("bad_filter", field)
        assert says in error["message"]
    assert not BulkAction.objects.exists()


def test_an_unknown_filter_field_is_refused(story):
    response = post(api_client(story.owner), "/preview", body(story, filter={"colour": "red"}))
    assert response.status_code == 422
    assert error_of(response)["message"] == "filter.colour: unknown field"


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_members_and_viewers_are_refused_with_a_403(story, who):
    outage(story.workspace, 2)
    client = api_client(getattr(story, who))
    for path, extra in (("/preview", {}), ("", {"expected_count": 2})):
        response = post(client, path, body(story, **extra))
        assert response.status_code == 403
        assert error_of(response)["message"] == "Only workspace owners and admins can do this."
    assert not BulkAction.objects.exists()


def test_a_workspace_admin_may(story, no_enqueue):
    admin = UserFactory.create(username="ada")
    add_member(story.workspace, admin, Membership.Role.ADMIN)
    outage(story.workspace, 1)
    with no_enqueue():
        response = post(api_client(admin), "", body(story, expected_count=1))
    assert response.status_code == 202


def test_an_outsider_finds_nothing(story):
    job_owner = outage(story.workspace, 1)
    assert job_owner
    response = post(api_client(story.outsider), "/preview", body(story))
    assert response.status_code == 404


def test_a_job_can_be_cancelled_once(story, no_enqueue):
    outage(story.workspace, 2)
    client = api_client(story.owner)
    with no_enqueue():
        job = post(client, "", body(story, expected_count=2)).json()
    response = post(client, f"/{job['id']}/cancel", {})
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    again = post(client, f"/{job['id']}/cancel", {})
    assert again.status_code == 409
    assert error_of(again)["message"] == f"Bulk retry #{job['id']} is cancelled."
    assert post(api_client(story.teammate), f"/{job['id']}/cancel", {}).status_code == 403
    assert api_client(story.outsider).get(f"/api/bulk-actions/{job['id']}").status_code == 404
