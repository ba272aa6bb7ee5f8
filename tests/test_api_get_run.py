"""GET /api/runs/{id}: a run with its log lines, artifacts and gate results."""

from __future__ import annotations

from decimal import Decimal

import pytest

from features.models import Artifact
from pipeline import engine
from pipeline.models import Run
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


def test_it_gives_tokens_and_cost_and_null_when_the_cost_is_unknown(story, run):
    Run.objects.filter(pk=run.pk).update(
        input_tokens=1000, output_tokens=500, cache_read_tokens=200, cache_write_tokens=100
    )
    Artifact.objects.filter(run=run).update(truncated=True)
    client = api_client(story.owner)

    Run.objects.filter(pk=run.pk).update(cost_usd=Decimal("0.0105"))
    body = client.get(f"/api/runs/{run.pk}").json()
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    assert [body[k] for k in tokens] == [1000, 500, 200, 100]
    assert body["cost_usd"] == 0.0105
    assert body["artifacts"][0]["truncated"] is True

    Run.objects.filter(pk=run.pk).update(cost_usd=None)
    assert client.get(f"/api/runs/{run.pk}").json()["cost_usd"] is None
