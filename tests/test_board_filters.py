"""The board's search and filters: kept in the URL, applied to both boards, and a constant
number of queries however many cards a column holds (only its first ones are drawn)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from features.actions import do_create_feature
from features.models import Dependency, Feature
from pipeline.board_filters import clean_query
from pipeline.card_queries import COLUMN_PAGE
from pipeline.models import Run
from tests.engine_helpers import stage


def _board(story, user=None, **params):
    client = story.client_for(user or story.teammate)
    return client.get(reverse("features:board", args=[story.workspace.slug]), params)


def _card(story, title, key="idea", **kwargs):
    return do_create_feature(
        story.workspace, title=title, user=story.owner, stage=stage(story.workspace, key), **kwargs
    )


def _titles(response) -> set[str]:
    columns = response.context["feature_columns"] + response.context["work_columns"]
    return {card.title for column in columns for card in column.cards}


def _fill(story, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        parent = _card(story, f"Feature {i}", ["idea", "architecture", "done"][i % 3])
        task = _card(story, f"Task {i}", "todo", kind=Feature.Kind.TASK, parent=parent)
        if i % 2:
            Run.objects.create(
                workspace=story.workspace, feature=parent, stage=parent.stage, status="failed"
            )
        if i % 4 == 1:
            Feature.objects.filter(pk=task.pk).update(status=Feature.Status.BLOCKED)
            Dependency.objects.create(feature=task, depends_on=parent)


def _queries(story, **params) -> int:
    client = story.client_for(story.teammate)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("features:board", args=[story.workspace.slug]), params)
    assert response.status_code == 200
    return len(queries)


def test_it_draws_a_constant_number_of_queries_however_long_the_columns(story):
    _fill(story, 4)
    small = {
        "plain": _queries(story),
        "filtered": _queries(story, q="Task", failed="1"),
        "grouped": _queries(story, group="parent"),
    }
    _fill(story, 3 * COLUMN_PAGE, start=4)
    large = {
        "plain": _queries(story),
        "filtered": _queries(story, q="Task", failed="1"),
        "grouped": _queries(story, group="parent"),
    }
    assert large == small
    assert max(large.values()) <= 12


def test_it_shows_the_first_cards_of_a_long_column_and_counts_them_all(story):
    _fill(story, COLUMN_PAGE + 5)
    response = _board(story)
    todo = next(c for c in response.context["work_columns"] if c.stage.key == "todo")
    assert len(todo.cards) == COLUMN_PAGE
    assert (todo.count, todo.hidden) == (COLUMN_PAGE + 5, 5)
    assert "Show 5 more" in response.content.decode()


def test_it_finds_a_card_by_title_description_or_id(story):
    wanted = _card(story, "Checkout page", description="Let shoppers pay with a saved card")
    _card(story, "Login form")
    assert _titles(_board(story, q="checkout")) == {"Checkout page"}
    assert _titles(_board(story, q="saved card")) == {"Checkout page"}
    assert _titles(_board(story, q=f"#{wanted.pk}")) == {"Checkout page"}


def test_it_filters_by_kind_status_stage_parent_blocked_and_failed_runs(story):
    _fill(story, 4)
    parent = Feature.objects.get(title="Feature 1")
    assert _titles(_board(story, kind="task")) == {f"Task {i}" for i in range(4)}
    assert _titles(_board(story, stage="architecture")) == {"Feature 1"}
    assert _titles(_board(story, parent=str(parent.pk))) == {"Task 1"}
    assert _titles(_board(story, blocked="1")) == {"Task 1"}
    assert _titles(_board(story, status="blocked")) == {"Task 1"}
    assert _titles(_board(story, failed="1")) == {"Feature 1", "Feature 3"}


def test_it_keeps_the_filters_in_the_page_so_a_reload_shows_them(story):
    _card(story, "Checkout page")
    html = _board(story, q="Checkout", kind="feature", blocked="1").content.decode()
    assert 'name="q" value="Checkout"' in html
    assert '<option value="feature" selected>' in html
    assert 'name="blocked" value="1" checked' in html
    assert 'data-board-url="/w/alices-team/?q=Checkout&amp;kind=feature&amp;blocked=1"' in html


def test_it_ignores_filter_values_it_does_not_know(story):
    _card(story, "Checkout page")
    response = _board(story, kind="spaceship", status="x", stage="nope", parent="abc", q="")
    assert response.status_code == 200
    assert _titles(response) == {"Checkout page"}


def test_it_names_the_parent_and_the_blockers_with_links(story):
    _fill(story, 2)
    html = _board(story).content.decode()
    parent = Feature.objects.get(title="Feature 1")
    assert f'<a href="/features/{parent.pk}/" title="Parent card">Feature 1</a>' in html
    assert f'Blocked by <a href="/features/{parent.pk}/">Feature 1</a>' in html


def test_it_groups_the_work_board_by_parent_in_swimlanes(story):
    _fill(story, 3)
    response = _board(story, group="parent")
    lanes = response.context["lanes"]
    assert [lane.parent_title for lane in lanes] == ["Feature 2", "Feature 1", "Feature 0"]
    assert [lane.count for lane in lanes] == [1, 1, 1]
    html = response.content.decode()
    assert html.count('<details class="lane"') == 3


def test_it_collapses_empty_columns_with_their_count(story):
    _card(story, "Checkout page")
    html = _board(story).content.decode()
    done = stage(story.workspace, "done")
    assert f'<section class="column collapsed" id="column-{done.pk}"' in html


def test_show_more_loads_the_next_cards_under_the_filters(story):
    _fill(story, COLUMN_PAGE + 5)
    todo = stage(story.workspace, "todo")
    client = story.client_for(story.teammate)
    url = reverse("features:column_more", args=[story.workspace.slug, todo.pk])
    response = client.get(url, {"offset": COLUMN_PAGE})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<article class="card') == 5
    assert f'id="column-{todo.pk}-more" hx-swap-oob="true"' in html
    assert "Show" not in html.split(f'id="column-{todo.pk}-more"')[1]

    filtered = client.get(url, {"offset": 0, "q": "Task 1"}).content.decode()
    # Task 1 and Task 10..19 match "Task 1"
    assert filtered.count('<article class="card') == len(
        [i for i in range(COLUMN_PAGE + 5) if str(i).startswith("1")]
    )


def test_show_more_refuses_a_bad_offset_and_other_workspaces(story):
    todo = stage(story.workspace, "todo")
    url = reverse("features:column_more", args=[story.workspace.slug, todo.pk])
    assert story.client_for(story.teammate).get(url, {"offset": "-1"}).status_code == 400
    assert story.client_for(story.outsider).get(url, {"offset": "0"}).status_code == 404


def test_search_text_is_tidied_before_it_reaches_the_database():
    # (A NUL in a URL is already a 400 from the middleware; a search built in code is not.)
    assert clean_query("  Check\x00out   page ") == "Checkout page"
    assert len(clean_query("x" * 500)) == 200
