"""GET /api/runs/{id}/logs: a run's log lines as JSON, from a seq on."""

from __future__ import annotations

import pytest

from pipeline import engine
from tests.api_helpers import api_client, error_of
from tests.engine_helpers import card, chain


@pytest.fixture
def run(story, eager):
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    return chain(feature)[0]


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_returns_every_line_of_a_finished_run(story, run, who):
    response = api_client(getattr(story, who)).get(f"/api/runs/{run.pk}/logs")

    assert response.status_code == 200
    body = response.json()
    assert (body["run_id"], body["status"], body["finished"]) == (run.pk, "succeeded", True)
    seqs = [line["seq"] for line in body["logs"]]
    assert seqs == sorted(seqs) == list(range(1, run.logs.count() + 1))
    assert set(body["logs"][0]) == {"seq", "level", "message", "data", "attempt", "created_at"}


def test_it_returns_the_lines_after_a_seq(story, run):
    response = api_client(story.owner).get(f"/api/runs/{run.pk}/logs?after=2&limit=1")

    assert [line["seq"] for line in response.json()["logs"]] == [3]


def test_it_hides_the_run_from_an_outsider(story, run):
    response = api_client(story.outsider).get(f"/api/runs/{run.pk}/logs")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_it_asks_an_anonymous_caller_to_authenticate(story, run):
    assert api_client().get(f"/api/runs/{run.pk}/logs").status_code == 401
