"""GET /api/runs: runs of the caller's workspaces, by feature, workspace and status."""

from __future__ import annotations

import pytest

from pipeline import engine
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card, chain


@pytest.fixture
def finished(story, eager):
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    return feature


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_lists_runs_newest_first(story, finished, who):
    first, second = chain(finished)

    response = api_client(getattr(story, who)).get("/api/runs")

    assert ids(response) == [second.pk, first.pk]
    item = response.json()["items"][1]
    assert (item["stage"], item["status"], item["next_run"], item["feature"]) == (
        "architecture",
        "succeeded",
        second.pk,
        finished.pk,
    )


def test_it_filters_by_feature_workspace_and_status(story, finished, no_enqueue):
    other = card(story.workspace, "Other")
    with no_enqueue():
        queued = engine.launch_pipeline(other, story.owner).run
    client = api_client(story.owner)

    assert ids(client.get(f"/api/runs?feature={other.pk}")) == [queued.pk]
    assert ids(client.get("/api/runs?status=queued&workspace=alices-team")) == [queued.pk]
    assert len(ids(client.get("/api/runs?status=succeeded"))) == 2


def test_it_shows_an_outsider_none_of_them(story, finished):
    client = api_client(story.outsider)

    assert ids(client.get("/api/runs")) == []
    assert error_of(client.get(f"/api/runs?feature={finished.pk}"))["code"] == "not_found"
    assert client.get("/api/runs?workspace=alices-team").status_code == 404


def test_it_refuses_an_unknown_status(story):
    response = api_client(story.owner).get("/api/runs?status=exploded")

    assert response.status_code == 422
    assert error_of(response)["field"] == "status"


def test_it_asks_an_anonymous_caller_to_authenticate(story):
    assert api_client().get("/api/runs").status_code == 401
