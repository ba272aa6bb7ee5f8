"""Edit and rerun: a finished run's stage again with feedback or edited inputs, history kept."""

from __future__ import annotations

import pytest

from features.models import Artifact
from pipeline import engine
from pipeline.executor import build_inputs, render_prompt
from pipeline.models import Run
from pipeline.providers.offline import OfflineProvider
from skills.models import RecipeStep
from tests.engine_helpers import card, chain


@pytest.fixture
def finished(story, eager):
    """A card whose quick pipeline ran: architecture → tasks, now in Done."""
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    return feature


@pytest.fixture
def prompts(monkeypatch):
    seen: list[str] = []
    original = OfflineProvider.generate

    def spy(self, request):
        seen.append(request.prompt)
        return original(self, request)

    monkeypatch.setattr(OfflineProvider, "generate", spy)
    return seen


def test_it_links_the_rerun_and_continues_the_chain(story, eager, finished, prompts):
    first, second = chain(finished)

    with eager():
        rerun = engine.rerun_run(first, story.teammate, feedback="Name the payment provider.")

    rerun.refresh_from_db()
    assert (rerun.rerun_of_id, rerun.parent_run_id) == (first.pk, None)
    assert (rerun.stage.key, rerun.status, rerun.triggered_by) == (
        "architecture",
        "succeeded",
        story.teammate,
    )
    runs = chain(finished)
    assert [r.pk for r in runs[:2]] == [first.pk, second.pk]  # history kept as it was
    assert [(r.stage.key, r.status) for r in runs[2:]] == [
        ("architecture", "succeeded"),
        ("tasks", "succeeded"),
    ]
    assert runs[3].parent_run_id == rerun.pk
    assert "Feedback on the previous result, to address:\nName the payment provider." in prompts[0]
    assert rerun.logs.filter(message__contains="with feedback: Name the payment").exists()
    versions = Artifact.objects.filter(feature=finished, name="architecture.md")
    assert sorted(versions.values_list("version", "run_id")) == [(1, first.pk), (2, rerun.pk)]


def test_edited_inputs_reach_the_prompt(story, eager, finished, prompts):
    first = chain(finished)[0]

    with eager():
        engine.rerun_run(first, story.owner, inputs={"description": "Pay with Apple Pay only."})

    assert "Pay with Apple Pay only." in prompts[0]
    assert "saved card" not in prompts[0]


def test_build_inputs_takes_feedback_and_edited_documents(story, finished):
    first = chain(finished)[0]
    rerun = Run(
        feature=finished,
        stage=first.stage,
        result={"feedback": "Shorter.", "inputs": {"architecture_md": "# Edited"}},
    )
    step = RecipeStep.objects.select_related("skill").get(recipe__stage=first.stage)

    inputs = build_inputs(rerun, step, [])

    assert (inputs["feedback"], inputs["architecture_md"]) == ("Shorter.", "# Edited")
    assert render_prompt("Hi {{feedback}}", inputs) == "Hi Shorter."  # not appended twice


def test_it_refuses_a_run_that_has_not_finished(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run

    with pytest.raises(engine.EngineError, match="rerun it once it ends"):
        engine.rerun_run(run, story.owner, feedback="x")


def test_it_refuses_while_the_card_has_another_run(story, eager, finished, no_enqueue):
    first = chain(finished)[0]
    with no_enqueue():
        engine.rerun_run(first, story.owner)

    with pytest.raises(engine.AlreadyRunning):
        engine.rerun_run(first, story.owner)


# --- Through the card page ------------------------------------------------------------------------


def rerun_url(feature, run):
    return f"/features/{feature.pk}/runs/{run.pk}/rerun"


def test_the_card_page_offers_a_rerun_and_links_the_diff(story, eager, finished):
    first = chain(finished)[0]
    client = story.client_for(story.teammate)
    page = client.get(f"/features/{finished.pk}/").content.decode()
    assert rerun_url(finished, first) in page
    assert "Rerun with feedback" in page

    with eager():
        response = client.post(rerun_url(finished, first), {"feedback": "More risks, please."})

    rerun = Run.objects.get(rerun_of=first)
    assert response.status_code == 302
    assert response["Location"] == f"/features/{finished.pk}/#run-{rerun.pk}"
    page = client.get(f"/features/{finished.pk}/").content.decode()
    diff = f"/features/{finished.pk}/artifacts/architecture.md/diff?a=1&amp;b=2"
    assert diff in page
    assert f'Rerun of <a href="#run-{first.pk}">#{first.pk}</a>' in page
    shown = client.get(diff.replace("&amp;", "&"))
    assert shown.status_code == 200
    assert "architecture.md" in shown.content.decode()


def test_a_refused_rerun_says_why(story, no_enqueue):
    feature = card(story.workspace)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run

    response = story.client_for(story.owner).post(
        rerun_url(feature, run), {"feedback": "x"}, follow=True
    )

    assert "rerun it once it ends" in response.content.decode()


def test_an_edited_description_is_sent_only_when_changed(story, eager, finished):
    first = chain(finished)[0]
    client = story.client_for(story.owner)

    with eager():
        client.post(rerun_url(finished, first), {"description": finished.description})
    rerun = Run.objects.get(rerun_of=first)

    assert rerun.logs.filter(message=f"Rerun of run #{first.pk}").exists()


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("outsider", 404)])
def test_viewers_and_outsiders_cannot_rerun(story, finished, who, status):
    first = chain(finished)[0]

    response = story.client_for(getattr(story, who)).post(rerun_url(finished, first), {})

    assert response.status_code == status
    assert not Run.objects.filter(rerun_of=first).exists()


def test_an_anonymous_visitor_is_sent_to_log_in(story, finished, client):
    response = client.post(rerun_url(finished, chain(finished)[0]), {})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_run_of_another_card_is_not_found(story, eager, finished):
    other = card(story.workspace, "Other")
    first = chain(finished)[0]

    response = story.client_for(story.owner).post(rerun_url(other, first), {})

    assert response.status_code == 404
