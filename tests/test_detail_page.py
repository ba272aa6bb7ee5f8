"""The card detail page: who may see it, and what a card that went through a pipeline shows."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from features.models import Artifact, Feature
from pipeline import engine
from pipeline.models import Run
from pipeline.runlog import append_log
from tests.engine_helpers import card, chain

XSS_MARKDOWN = """# Plan

<script>alert(1)</script>

<img src=x onerror=alert(1)>

[x](javascript:alert(1)) and [docs](https://example.com/docs)
"""


def _url(feature: Feature) -> str:
    return reverse("features:detail", args=[feature.pk])


def _section(html: str, heading_id: str) -> str:
    """The HTML of one <section> of the page, found by its heading's id."""
    match = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', html, re.S)
    assert match, f"no section {heading_id}"
    return match.group(0)


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_renders_for_every_member(story, who):
    feature = card(story.workspace, "Checkout page")

    response = story.client_for(getattr(story, who)).get(_url(feature))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Checkout page</h1>" in html
    assert reverse("features:board", args=[story.workspace.slug]) in html
    assert "Idea" in html
    assert "Idle" in html


def test_it_offers_the_edit_form_to_writers_only(story):
    feature = card(story.workspace)
    edit_url = reverse("features:edit", args=[feature.pk])

    as_teammate = story.client_for(story.teammate).get(_url(feature)).content.decode()
    as_viewer = story.client_for(story.viewer).get(_url(feature)).content.decode()

    assert f'hx-post="{edit_url}"' in as_teammate
    assert f'name="version" value="{feature.version}"' in as_teammate
    assert edit_url not in as_viewer


def test_it_gives_an_outsider_404(story):
    feature = card(story.workspace, "Secret plan")

    response = story.client_for(story.outsider).get(_url(feature))

    assert response.status_code == 404
    assert b"Secret plan" not in response.content


def test_it_sends_an_anonymous_visitor_to_login(story):
    feature = card(story.workspace)

    response = Client().get(_url(feature))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_links_the_parent_and_lists_children(story):
    parent = card(story.workspace, "Checkout page")
    child = card(story.workspace, "Incident: card declined")
    Feature.objects.filter(pk=child.pk).update(parent=parent, kind=Feature.Kind.INCIDENT)

    child_page = story.client_for(story.owner).get(_url(child)).content.decode()
    parent_page = story.client_for(story.owner).get(_url(parent)).content.decode()

    assert f'href="{_url(parent)}">Parent: Checkout page</a>' in child_page
    children = _section(parent_page, "children-heading")
    assert f'href="{_url(child)}">Incident: card declined</a>' in children
    assert "Incident" in children
    assert "Idle" in children


def test_it_renders_artifact_markdown_without_anything_active(story):
    feature = card(story.workspace)
    Artifact.objects.create(feature=feature, name="plan.md", content=XSS_MARKDOWN)

    html = story.client_for(story.owner).get(_url(feature)).content.decode()

    artifacts = _section(html, "artifacts-heading")
    assert "<h3>Plan</h3>" in artifacts  # the markdown did render, under the page's headings
    assert "<script" not in artifacts
    assert "alert(1)</" not in artifacts
    assert "<img" not in artifacts
    assert "onerror" not in artifacts
    assert "javascript:" not in artifacts
    assert '<a rel="noopener noreferrer">x</a>' in artifacts
    assert '<a href="https://example.com/docs" rel="noopener noreferrer">docs</a>' in artifacts


def test_it_shows_the_run_chain_artifacts_and_children_after_a_real_pipeline(story, eager):
    feature = card(story.workspace, "Checkout page")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    first, second = chain(feature)

    response = story.client_for(story.teammate).get(_url(feature))

    html = response.content.decode()
    runs = _section(html, "runs-heading")
    assert f'id="run-{first.pk}"' in runs
    assert f'id="run-{second.pk}"' in runs
    assert runs.index(f'id="run-{first.pk}"') < runs.index(f'id="run-{second.pk}"')
    # The second run names the run that started it.
    assert re.search(
        rf'id="run-{second.pk}".*?href="#run-{first.pk}"[^>]*>#{first.pk}</a>', runs, re.S
    )
    assert runs.count("Succeeded") == 2
    for slug, version in {**first.skill_versions, **second.skill_versions}.items():
        assert f"<code>{slug} v{version}</code>" in runs

    artifacts = _section(html, "artifacts-heading")
    assert "<h3>architecture.md</h3>" in artifacts
    assert "<h3>tasks.json</h3>" in artifacts
    assert '<ol class="task-list">' in artifacts
    assert "<summary>Raw JSON</summary>" in artifacts

    children = _section(html, "children-heading")
    tasks = list(feature.children.all())
    assert len(tasks) >= 3
    for task in tasks:
        assert f'href="{_url(task)}">{task.title}</a>' in children

    history = _section(html, "history-heading")
    assert f"by run #{second.pk}" in history

    # Nothing is active, so the last run's log is shown collapsed, with no live socket.
    log = _section(html, "log-heading")
    assert "<details>" in log
    assert "ws-connect" not in log
    assert f'id="log-lines-{second.pk}"' in log
    assert "Pipeline finished" in log


def test_it_follows_the_active_run_over_the_websocket(story):
    feature = card(story.workspace)
    run = Run.objects.create(
        workspace=story.workspace, feature=feature, stage=feature.stage, status=Run.Status.RUNNING
    )
    append_log(run.pk, "Step 1/2: write <architecture>")
    append_log(run.pk, "Waiting on the model")

    html = story.client_for(story.owner).get(_url(feature)).content.decode()

    log = _section(html, "log-heading")
    assert f'ws-connect="/ws/runs/{run.pk}/?after=2"' in log
    assert 'hx-ext="ws"' in log
    assert "Step 1/2: write &lt;architecture&gt;" in log
    assert re.search(r'data-seq="1".*data-seq="2"', log, re.S)


def test_it_says_when_a_cost_is_unknown_and_a_document_was_cut_off(story, eager):
    feature = card(story.workspace, "Checkout page")
    with eager():
        engine.launch_pipeline(feature, story.owner)
    architecture = chain(feature)[0]
    Run.objects.filter(pk=architecture.pk).update(cost_usd=None)
    Artifact.objects.filter(run=architecture).update(truncated=True)

    html = story.client_for(story.owner).get(_url(feature)).content.decode()

    runs = _section(html, "runs-heading")
    assert "<dt>Cost</dt><dd><span" in runs
    assert ">unknown</span>" in runs
    assert "$0.0000" in runs  # the other run's known (offline) cost is still shown
    artifacts = _section(html, "artifacts-heading")
    assert artifacts.count(">Cut off</span>") == 1  # architecture.md, not tasks.json
