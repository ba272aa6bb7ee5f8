"""Comparing two versions of an artifact: a line diff, escaped, for members only."""

from __future__ import annotations

import re

from django.urls import reverse

from features.diffs import line_diff
from features.models import Artifact, Feature
from tests.engine_helpers import card

HTMX = {"HTTP_HX_REQUEST": "true"}
V1 = "# Plan\n\nKeep this line.\nUse <b>bold</b> ideas.\nThe end.\n"
V2 = "# Plan\n\nKeep this line.\nUse <script>alert(1)</script> instead.\nThe end.\n"


def _versions(feature: Feature) -> None:
    Artifact.objects.create(feature=feature, name="plan.md", version=1, content=V1)
    Artifact.objects.create(feature=feature, name="plan.md", version=2, content=V2)


def _diff_url(feature: Feature, name: str = "plan.md") -> str:
    return reverse("features:artifact_diff", args=[feature.pk, name])


def test_it_shows_the_changed_lines_escaped_as_a_fragment_for_htmx(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.teammate).get(_diff_url(feature), {"a": 1, "b": 2}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="diff-view"')
    lines = re.findall(r'<span class="line (\w+)">(.*?)</span>', html)
    assert ("del", "-Use &lt;b&gt;bold&lt;/b&gt; ideas.") in lines
    assert ("add", "+Use &lt;script&gt;alert(1)&lt;/script&gt; instead.") in lines
    assert ("same", " Keep this line.") in lines
    assert lines[0] == ("hunk", "@@ -1,5 +1,5 @@")
    assert "<script>" not in html
    assert "<b>" not in html
    assert "+1" in html
    assert "\u22121" in html  # a minus sign, not a hyphen


def test_it_renders_a_full_page_for_a_normal_request(story):
    feature = card(story.workspace, "Checkout")
    _versions(feature)

    response = story.client_for(story.owner).get(_diff_url(feature), {"a": 1, "b": 2})

    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith("<!doctype html>")
    assert f'href="{reverse("features:detail", args=[feature.pk])}">← Checkout</a>' in html
    assert '<span class="line add">+Use &lt;script&gt;' in html


def test_it_lets_a_viewer_compare(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.viewer).get(_diff_url(feature), {"a": 1, "b": 2})

    assert response.status_code == 200


def test_it_gives_an_outsider_404(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.outsider).get(_diff_url(feature), {"a": 1, "b": 2})

    assert response.status_code == 404
    assert b"Keep this line" not in response.content


def test_it_answers_404_for_a_version_that_does_not_exist(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.owner).get(_diff_url(feature), {"a": 1, "b": 3})

    assert response.status_code == 404


def test_it_answers_400_without_two_versions(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.owner).get(_diff_url(feature), {"a": "one"})

    assert response.status_code == 400


def test_it_says_when_two_versions_are_identical(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.owner).get(_diff_url(feature), {"a": 2, "b": 2}, **HTMX)

    assert "These versions are identical." in response.content.decode()


def test_it_offers_compare_on_the_page_once_there_are_two_versions(story):
    feature = card(story.workspace)
    _versions(feature)
    Artifact.objects.create(feature=feature, name="notes.md", content="Only one version.")

    html = (
        story.client_for(story.owner)
        .get(reverse("features:detail", args=[feature.pk]))
        .content.decode()
    )

    assert html.count('class="compare"') == 1
    assert f'hx-get="{_diff_url(feature)}"' in html
    assert '<option value="1" selected>v1</option>' in html  # from the previous version
    assert '<option value="2" selected>v2</option>' in html  # to the latest


def test_it_groups_nearby_changes_into_hunks_with_context():
    old = "\n".join(f"line {i}" for i in range(1, 21))
    new = old.replace("line 2\n", "line two\n").replace("line 19", "line nineteen")

    diff = line_diff(old, new)

    hunks = [line.text for line in diff.lines if line.kind == "hunk"]
    assert hunks == ["@@ -1,5 +1,5 @@", "@@ -16,5 +16,5 @@"]
    assert (diff.added, diff.removed) == (2, 2)
    assert [line.prefix for line in diff.lines[1:6]] == [" ", "-", "+", " ", " "]


def test_it_answers_400_for_an_absurd_version_number(story):
    feature = card(story.workspace)
    _versions(feature)

    response = story.client_for(story.owner).get(_diff_url(feature), {"a": 1, "b": 10**30})

    assert response.status_code == 400
