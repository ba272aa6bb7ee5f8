"""Card actions on the board: one POST to a service, the card as it now is, a toast."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from features.models import Feature
from pipeline import engine
from pipeline.models import Run
from skills.models import StageRecipe
from tests.engine_helpers import card, chain, stage


def act(client, feature: Feature, action: str, **data: str):
    return client.post(
        reverse("features:action", args=[feature.pk, action]), data, HTTP_HX_REQUEST="true"
    )


def toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["toast"]


def test_it_launches_and_answers_with_the_card_in_progress(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        response = act(story.client_for(story.teammate), feature, "launch")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="card-{feature.pk}"' in html
    assert "Queued:" in html
    assert "step 1 of 2" in html
    # Stage names, not keys; keyed by the card, so it replaces the card's older toasts.
    assert toast(response) == {
        "message": "Launched: Architecture → Tasks",
        "level": "success",
        "feature_id": feature.pk,
    }
    (run,) = chain(feature)
    assert run.triggered_by == story.teammate


def test_a_second_launch_answers_409_with_the_reason(story, no_enqueue):
    feature = card(story.workspace)
    client = story.client_for(story.owner)
    with no_enqueue():
        act(client, feature, "launch")
        response = act(client, feature, "launch")
    assert response.status_code == 409
    assert "already has a pipeline running" in toast(response)["message"]
    assert toast(response)["level"] == "error"
    assert len(chain(feature)) == 1


def _card_html(story, feature: Feature) -> str:
    response = story.client_for(story.owner).get(reverse("features:board", args=["alices-team"]))
    html = response.content.decode()
    start = html.index(f'id="card-{feature.pk}"')
    return html[start : html.index("</article>", start)]


def test_launch_is_offered_only_where_something_can_run(story, no_enqueue):
    finished = card(story.workspace, "Finished", at="done")
    assert ">Launch</button>" not in _card_html(story, finished)

    busy = card(story.workspace, "Busy")
    with no_enqueue():
        engine.launch_pipeline(busy, story.owner)
    launch = _card_html(story, busy).split(">Launch</button>")[0].rsplit("<button", 1)[1]
    assert "disabled" in launch

    idle = card(story.workspace, "Idle")
    launch = _card_html(story, idle).split(">Launch</button>")[0].rsplit("<button", 1)[1]
    assert "disabled" not in launch


@pytest.mark.parametrize("user", ["viewer", "outsider"])
def test_viewers_and_outsiders_cannot_act(story, user):
    feature = card(story.workspace)
    response = act(story.client_for(getattr(story, user)), feature, "launch")
    assert response.status_code == (403 if user == "viewer" else 404)
    assert not Run.objects.filter(feature=feature).exists()


def test_anonymous_users_are_sent_to_login(story, client):
    feature = card(story.workspace)
    response = client.post(reverse("features:action", args=[feature.pk, "launch"]))
    assert response.status_code == 302
    assert not Run.objects.filter(feature=feature).exists()


def test_stop_cancels_the_pipeline(story, no_enqueue):
    feature = card(story.workspace)
    client = story.client_for(story.owner)
    with no_enqueue():
        act(client, feature, "launch")
        response = act(client, feature, "stop")
    assert response.status_code == 200
    assert chain(feature)[0].status == Run.Status.CANCELLED
    assert "Pipeline stopped by alice" in response.content.decode()


def test_retry_continues_from_the_failed_run(story, eager):
    feature = card(story.workspace, description="[offline:fail=permanent]")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    Feature.objects.filter(pk=feature.pk).update(description="Fixed")
    client = story.client_for(story.owner)
    with eager():
        response = act(client, feature, "retry")
    assert response.status_code == 200
    assert [r.status for r in chain(feature)] == ["failed", "succeeded", "succeeded"]


def test_start_runs_a_run_waiting_for_approval(story, no_enqueue):
    StageRecipe.objects.filter(stage=stage(story.workspace, "architecture")).update(
        automation=StageRecipe.Automation.HUMAN_APPROVAL
    )
    feature = card(story.workspace)
    with no_enqueue():
        engine.move_feature(feature, stage(story.workspace, "architecture"), user=story.owner)
        board = story.client_for(story.owner).get(reverse("features:board", args=["alices-team"]))
        assert "Waiting for Start:" in board.content.decode()
        response = act(story.client_for(story.owner), feature, "start")
    assert response.status_code == 200
    assert chain(feature)[0].status == Run.Status.QUEUED


def test_accept_and_reject_decide_a_waiting_result(story, eager):
    StageRecipe.objects.filter(stage=stage(story.workspace, "architecture")).update(
        automation=StageRecipe.Automation.AUTO_NOTIFY
    )
    first, second = card(story.workspace, "One"), card(story.workspace, "Two")
    with eager():
        engine.launch_pipeline(first, story.owner)
        engine.launch_pipeline(second, story.owner)
    client = story.client_for(story.owner)
    with eager():
        accepted = act(client, first, "accept")
    rejected = act(client, second, "reject", reason="Too vague")
    assert (accepted.status_code, rejected.status_code) == (200, 200)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.stage.key == "done"
    assert second.status_note == "Result rejected by alice: Too vague"


def test_an_action_that_does_not_apply_says_so(story):
    feature = card(story.workspace)
    response = act(story.client_for(story.owner), feature, "accept")
    assert response.status_code == 409
    assert "no such run" in toast(response)["message"]


def test_an_unknown_action_is_not_found(story):
    feature = card(story.workspace)
    response = story.client_for(story.owner).post(f"/features/{feature.pk}/explode")
    assert response.status_code == 404


def test_the_cards_links_are_the_routes_urls(story):
    feature = card(story.workspace)
    html = _card_html(story, feature)
    assert f'href="{reverse("features:detail", args=[feature.pk])}"' in html
    assert f'hx-post="{reverse("features:action", args=[feature.pk, "launch"])}"' in html
    assert f'hx-post="{reverse("features:move", args=[feature.pk])}"' in html
