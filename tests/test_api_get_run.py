"""GET /api/runs/{id}: a run with its log lines, artifacts and gate results."""

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
def test_it_shows_the_run_with_logs_artifacts_and_gates(story, run, who):
    response = api_client(getattr(story, who)).get(f"/api/runs/{run.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["stage"], body["status"], body["attempt"]) == (
        run.pk,
        "architecture",
        "succeeded",
        1,
    )
    assert body["triggered_by"] == "alice"
    assert [line["seq"] for line in body["logs"]] == list(range(1, len(body["logs"]) + 1))
    assert body["logs"][0]["message"] == "Launched: architecture → tasks"
    assert [a["name"] for a in body["artifacts"]] == ["architecture.md"]
    assert body["artifacts"][0]["content"].startswith("#")
    assert body["gates"]
    assert all(g["passed"] for g in body["gates"])


def test_it_hides_the_run_from_an_outsider(story, run):
    response = api_client(story.outsider).get(f"/api/runs/{run.pk}")

    assert response.status_code == 404
    assert error_of(response)["message"] == "No such run."


def test_it_asks_an_anonymous_caller_to_authenticate(story, run):
    assert api_client().get(f"/api/runs/{run.pk}").status_code == 401
