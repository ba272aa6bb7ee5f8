"""Generated work is keyed by the work: a rerun, a retry after a failed gate or a re-entry of the
stage reconciles with the cards made before, never adds a second set."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from features.actions import do_update_feature
from features.models import Dependency, Feature
from pipeline import engine
from pipeline.engine.generation import QUESTIONS_KEY, reconcile
from pipeline.models import Generation, Run
from skills.models import Gate
from tests.conftest import Story
from tests.engine_helpers import card, chain, stage

pytestmark = pytest.mark.django_db


def task_cards(feature: Feature) -> list[Feature]:
    return list(
        feature.children.exclude(source_key=QUESTIONS_KEY)
        .select_related("stage")
        .order_by("source_index", "id")
    )


def ids(cards: list[Feature]) -> list[int]:
    return [c.pk for c in cards]


@pytest.fixture
def finished(story: Story, eager: Any) -> Feature:
    """A quick pipeline that ran: architecture → tasks, the card in Done with its tasks."""
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    feature.refresh_from_db()
    assert feature.stage.key == "done"
    return feature


def test_a_rerun_with_the_same_list_keeps_the_same_cards(
    story: Story, eager: Any, finished: Feature
) -> None:
    before = ids(task_cards(finished))
    tasks_run = next(r for r in chain(finished) if r.stage.key == "tasks")

    with eager():
        engine.rerun_run(tasks_run, story.owner, feedback="Same list, please.")

    assert ids(task_cards(finished)) == before
    latest = Generation.objects.filter(parent=finished).order_by("-number").first()
    assert latest is not None
    assert (latest.number, sorted(latest.kept), latest.added, latest.removed) == (
        2,
        sorted(before),
        [],
        [],
    )


def test_a_retry_after_the_tasks_gate_failed_makes_one_set(story: Story, eager: Any) -> None:
    tasks = stage(story.workspace, "tasks")
    gate = Gate.objects.create(
        recipe=tasks.recipe,
        name="tasks.json names an owner",
        type=Gate.Type.CONTENT_CHECK,
        config={"file": "tasks.json", "required_sections": ["Owner"]},
        failure_message="The task list names no owner.",
    )
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    failed = chain(feature)[-1]
    assert (failed.stage.key, failed.status, failed.error_kind) == ("tasks", "failed", "gate")
    # The gates decide first: a list that failed them makes no cards.
    assert task_cards(feature) == []

    gate.delete()
    with eager():
        engine.retry_run(failed, story.owner)
    first = ids(task_cards(feature))
    with eager():
        engine.rerun_run(chain(feature)[-1], story.owner)

    assert 3 <= len(first) <= 6
    assert ids(task_cards(feature)) == first


def test_moving_a_done_card_back_into_the_tasks_stage_makes_no_second_set(
    story: Story, eager: Any, finished: Feature
) -> None:
    before = ids(task_cards(finished))

    with eager():
        engine.move_feature(finished, stage(story.workspace, "tasks"), user=story.owner)

    finished.refresh_from_db()
    assert finished.stage.key == "done"  # the stage ran again and passed its gates
    assert [r.stage.key for r in chain(finished)].count("tasks") == 2
    assert ids(task_cards(finished)) == before
    assert Dependency.objects.filter(feature__parent=finished).count() == len(
        {(d.feature_id, d.depends_on_id) for d in Dependency.objects.filter(feature__in=before)}
    )


def items(*titles: str, **depends: list[int]) -> list[dict[str, Any]]:
    return [
        {"title": t, "description": f"About {t}.", "depends_on": depends.get(f"d{i}", [])}
        for i, t in enumerate(titles)
    ]


def test_reconcile_keeps_what_people_touched_adds_new_items_and_marks_the_gone(
    story: Story,
) -> None:
    parent = card(story.workspace, "Checkout")
    tasks, todo = stage(story.workspace, "tasks"), stage(story.workspace, "todo")
    kw: dict[str, Any] = {"run": None, "kind": Feature.Kind.TASK, "landing": todo}
    first = reconcile(parent, tasks, items("API", "UI", "Docs", "Tests", d1=[0]), **kw)
    api, ui, docs, tests = task_cards(parent)
    engine.move_feature(ui, stage(story.workspace, "doing"), user=story.teammate)
    do_update_feature(docs, expected_version=docs.version, title="Docs (mine)")

    second_list = items("api", "UI", "Docs", "Search", d1=[0], d3=[1])
    for item in second_list:
        item["description"] += " Revised."
    second = reconcile(parent, tasks, second_list, **kw)

    assert (first.number, second.number) == (1, 2)
    assert second.updated == [api.pk]  # untouched: takes the new text
    assert second.kept == [ui.pk, docs.pk]  # moved / edited by a person: as they were
    assert second.removed == [tests.pk]
    (search,) = [c for c in task_cards(parent) if c.pk in second.added]
    assert search.title == "Search"
    cards = {c.pk: c for c in task_cards(parent)}
    assert cards[api.pk].description == "About api. Revised."
    assert cards[ui.pk].stage.key == "doing"
    assert cards[ui.pk].description == "About UI."
    assert cards[docs.pk].title == "Docs (mine)"
    assert cards[tests.pk].source_removed_at is not None  # marked, not deleted
    assert set(Dependency.objects.values_list("feature_id", "depends_on_id")) == {
        (ui.pk, api.pk),
        (search.pk, ui.pk),
    }
    # Search waits for UI, which is not done: blocked, derived from its dependency.
    assert cards[search.pk].status == Feature.Status.BLOCKED

    third = reconcile(parent, tasks, items("API", "UI", "Docs", "Tests"), **kw)

    assert third.updated == [api.pk, tests.pk]  # Tests is back in the list
    assert Feature.objects.get(pk=tests.pk).source_removed_at is None
    assert len(task_cards(parent)) == 5


def test_a_list_with_a_dependency_cycle_is_refused_with_a_clear_message(
    story: Story, no_enqueue: Any
) -> None:
    feature = card(story.workspace, at="tasks")
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        claimed = engine.claim_run(run.pk, "worker/1")
    assert claimed is not None
    cyclic = items("Schema", "API", "UI", d0=[2], d1=[0], d2=[1])
    step = engine.StepResult(
        skill="generate-tasks",
        version=1,
        output="tasks",
        artifact_name="tasks.json",
        text="{}",
        data={"tasks": cyclic},
        metrics={},
    )

    assert engine.complete_run(run.pk, claimed.attempt, [step], {})

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (Run.Status.FAILED, Run.ErrorKind.GATE)
    assert "dependency cycle: “Schema” → “UI” → “API” → “Schema”" in run.error_message
    assert task_cards(feature) == []
    feature.refresh_from_db()
    assert feature.status == Feature.Status.FAILED
    assert "dependency cycle" in feature.status_note


def test_the_card_page_shows_what_changed(story: Story, eager: Any, finished: Feature) -> None:
    doomed = task_cards(finished)[-1]
    Feature.objects.filter(pk=doomed.pk).update(source_key="title:an item the model dropped")
    tasks_run = next(r for r in chain(finished) if r.stage.key == "tasks")
    with eager():
        engine.rerun_run(tasks_run, story.owner)

    page = story.client_for(story.viewer).get(reverse("features:detail", args=[finished.pk]))

    html = page.content.decode()
    assert "What changed" in html
    assert "Tasks list 2" in html
    assert "no longer in the list" in html
    assert f'added <a href="/features/{task_cards(finished)[-1].pk}/">' in html


def test_new_cards_are_made_with_the_status_settling_derives(finished: Feature) -> None:
    """A list of new cards is inserted already settled (no read-back): what they show must be
    exactly what card_state derives from the database, blocked ones naming their blockers."""
    from pipeline.engine.card_state import derive, facts_of

    cards = task_cards(finished)
    assert any(c.status == Feature.Status.BLOCKED for c in cards), "the list has dependencies"
    facts = facts_of([c.pk for c in cards])
    for c in cards:
        status, note = derive(facts[c.pk][1])
        assert (c.status, c.status_note) == (status, note[:500]), c.title


def test_a_finished_card_shows_what_its_facts_derive(finished: Feature) -> None:
    """The completion stores the finished card's status with its move into Done (no
    read-back): it must be what card_state derives from the database once committed."""
    from pipeline.engine.card_state import derive, facts_of

    (_, facts) = facts_of([finished.pk])[finished.pk]
    assert (finished.status, finished.status_note) == derive(facts) == (Feature.Status.DONE, "")


def test_a_pipeline_that_ends_on_its_boards_last_stage_settles_the_card(
    story: Story, eager: Any
) -> None:
    """With no stage after Tasks the pipeline ends where it ran; the card's status comes from
    the facts the completion holds, and must match a fresh derivation."""
    from pipeline.engine.card_state import derive, facts_of

    done = stage(story.workspace, "done")
    assert not done.features.exists()
    done.delete()
    feature = card(story.workspace)
    with eager():
        engine.launch_pipeline(feature, story.owner)
    feature.refresh_from_db()
    assert feature.stage.key == "tasks"
    assert chain(feature)[-1].status == Run.Status.SUCCEEDED
    (_, facts) = facts_of([feature.pk])[feature.pk]
    assert (feature.status, feature.status_note) == derive(facts)
    assert Run.objects.filter(feature=feature).count() == 2
    assert (
        chain(feature)[-1]
        .logs.filter(message="Pipeline finished: last stage of the board")
        .exists()
    )


def test_new_cards_are_numbered_after_the_landing_column_in_list_order(
    story: Story, eager: Any
) -> None:
    """Positions are computed inside the INSERT: after the column's highest, in list order."""
    first = card(story.workspace, "Earlier")
    with eager():
        engine.launch_pipeline(first, story.owner)
    earlier = task_cards(first)
    column = earlier[0].stage
    top = max(c.position for c in Feature.objects.filter(stage=column))
    second = card(story.workspace, "Later")
    with eager():
        engine.launch_pipeline(second, story.owner)
    later = task_cards(second)
    assert [c.stage_id for c in later] == [column.pk] * len(later)
    assert [c.position for c in later] == list(range(top + 1, top + 1 + len(later)))


def test_a_first_generation_writes_cards_dependencies_audit_and_generation_together(
    story: Story, eager: Any
) -> None:
    """A list of new cards only: the cards, their dependencies (by place in the list, whatever
    order the database returns the rows in), an audit row each and the generation row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from features.models import StageTransition

    parent = card(story.workspace, "Checkout")
    with eager():
        run = engine.launch_pipeline(parent, story.owner).run
    tasks, todo = stage(story.workspace, "tasks"), stage(story.workspace, "todo")
    Generation.objects.filter(parent=parent).delete()
    Feature.objects.filter(parent=parent).delete()
    listed = items("Schema", "API", "UI", "Docs", d0=[3], d1=[0], d2=[0, 1])
    with CaptureQueriesContext(connection) as queries:
        made = reconcile(parent, tasks, listed, run=run, kind=Feature.Kind.TASK, landing=todo)
    cards = task_cards(parent)
    assert [c.title for c in cards] == ["Schema", "API", "UI", "Docs"]
    schema, api, ui, docs = cards
    assert made.added == ids(cards)
    assert made.kept == made.updated == made.removed == []
    assert set(
        Dependency.objects.filter(feature__parent=parent).values_list("feature_id", "depends_on_id")
    ) == {(schema.pk, docs.pk), (api.pk, schema.pk), (ui.pk, schema.pk), (ui.pk, api.pk)}
    assert list(
        StageTransition.objects.filter(feature__parent=parent)
        .order_by("feature_id")
        .values_list("feature_id", "to_stage_id", "actor_run_id", "note")
    ) == [(c.pk, todo.pk, run.pk, f"Generated by run #{run.pk}") for c in cards]
    generation = Generation.objects.get(parent=parent, stage=tasks)
    assert (generation.number, generation.run_id, generation.added) == (1, run.pk, ids(cards))
    assert (generation.kept, generation.updated, generation.removed) == ([], [], [])
    if connection.vendor == "postgresql":
        writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
        assert len(writes) == 1, writes  # one statement for all four tables


@pytest.mark.parametrize(
    "listed",
    [
        [{"title": "API"}, {"title": "API"}, {"title": "API #2"}],
        [{"title": "API #2"}, {"title": "API"}, {"title": "API"}],
        [{"title": "A", "key": "k1"}, {"title": "B", "key": "k1"}, {"title": "C", "key": "k1 #2"}],
    ],
)
def test_an_item_whose_key_looks_like_a_repeat_suffix_gets_its_own_card(
    story: Story, listed: list[dict[str, Any]]
) -> None:
    """A repeated title's "#2" must not be another item's own key: the list's cards are made
    (the unique key would refuse the completion otherwise), one per item, and a rerun of the
    same list keeps them all."""
    parent = card(story.workspace, "Checkout")
    tasks, todo = stage(story.workspace, "tasks"), stage(story.workspace, "todo")
    kw: dict[str, Any] = {"run": None, "kind": Feature.Kind.TASK, "landing": todo}
    first = reconcile(parent, tasks, listed, **kw)
    assert [c.title for c in task_cards(parent)] == [item["title"] for item in listed]
    assert len({c.source_key for c in task_cards(parent)}) == len(listed)
    again = reconcile(parent, tasks, listed, **kw)
    assert sorted(again.kept) == sorted(first.added)
    assert again.added == []


def test_a_run_whose_list_was_applied_applies_it_never_again(finished: Feature) -> None:
    """A duplicated accept or completion of the same run finds its generation and makes
    nothing: the read that brings the earlier cards also says this run's list is in."""
    from pipeline.engine.generation import apply_generated_work

    tasks_run = chain(finished)[-1]
    before = ids(task_cards(finished))
    assert before
    assert apply_generated_work(tasks_run, finished) is None
    assert ids(task_cards(finished)) == before
    assert Generation.objects.filter(parent=finished).count() == 1
