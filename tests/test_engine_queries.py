"""The engine's hot path stays lean: a stage run costs a constant number of queries.

Counted over a whole stage run as a worker does it (claim → execute → complete → advance),
in-process with the offline provider; `make bench` prints the same count per phase.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipeline import executor
from pipeline.models import Run
from tests.engine_helpers import card, chain

# The whole budget of one stage run that hands over to the next stage, on PostgreSQL: 2 to
# claim (lock the card then the workspace's admission; claim, admit and show the card running
# in one statement), none to execute (a worker keeps the stage's recipe while the definitions'
# count stays the same; a first stage has no documents to read), 6 to complete and advance
# (lock, fence, documents, the card's move with its status and audit row, the next run, and
# the log lines with the outcome in one statement). The goal: 12.
QUERIES_PER_STAGE_RUN = 8


def queries_of_first_stage(story, no_enqueue, title: str) -> tuple[Run, list[str]]:
    from pipeline import engine

    feature = card(story.workspace, title)
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
    with no_enqueue(), CaptureQueriesContext(connection) as queries:
        executor.execute_run(run.pk, "worker/1")
    # In a test every transaction is a savepoint of the test's: in production those are the
    # BEGIN and COMMIT that no query count includes.
    return run, [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the budget is PostgreSQL's: SQLite numbers and checks in separate statements",
)
def test_a_stage_run_that_hands_over_costs_a_constant_number_of_queries(story, no_enqueue):
    queries_of_first_stage(story, no_enqueue, "Warm-up")  # caches, content types
    run, queries = queries_of_first_stage(story, no_enqueue, "Checkout page")
    runs = chain(run.feature)
    assert [(r.stage.key, r.status) for r in runs] == [
        ("architecture", "succeeded"),
        ("tasks", "queued"),
    ]
    assert len(queries) <= QUERIES_PER_STAGE_RUN, "\n".join(q[:150] for q in queries)


def test_the_count_does_not_grow_with_the_workspace(story, no_enqueue):
    queries_of_first_stage(story, no_enqueue, "Warm-up")
    _, first = queries_of_first_stage(story, no_enqueue, "First")
    for i in range(5):
        queries_of_first_stage(story, no_enqueue, f"Other {i}")
    _, later = queries_of_first_stage(story, no_enqueue, "Later")
    assert len(later) == len(first)


def test_the_claim_brings_the_latest_version_of_each_document(story, no_enqueue):
    """The claim reads the card's documents with its lock: the inputs a step gets from them are
    exactly those a fresh read gives (latest version of each name, documents only, by name)."""
    from features.models import Artifact, Feature
    from pipeline import engine
    from pipeline.executor import build_inputs
    from skills.models import RecipeStep

    feature = card(story.workspace, "Checkout")
    for name, version, content, kind in [
        ("spec.md", 1, "old spec", Artifact.Kind.DOCUMENT),
        ("spec.md", 2, "new spec", Artifact.Kind.DOCUMENT),
        ("architecture.md", 1, "the design", Artifact.Kind.DOCUMENT),
        ("tasks.json", 1, "[]", Artifact.Kind.JSON),
    ]:
        Artifact.objects.create(
            feature=feature, name=name, version=version, content=content, kind=kind
        )
    with no_enqueue():
        run = engine.launch_pipeline(feature, story.owner).run
        claimed = engine.claim_run(run.pk, "worker/1")
    assert claimed is not None
    step = RecipeStep.objects.filter(recipe__stage_id=claimed.stage_id).first()
    assert step is not None
    held = build_inputs(claimed, step, [])
    claimed.feature = Feature.objects.get(pk=feature.pk)  # no documents held: read them
    assert build_inputs(claimed, step, []) == held
    assert (held["spec_md"], held["architecture_md"]) == ("new spec", "the design")
    assert held["context"] == "the design\n\nnew spec"
    assert "tasks_json" not in held


# The quick pipeline's last stage, which makes the card's task cards and finishes the pipeline:
# 2 to claim, 4 to complete (lock, fence, documents, log lines with the outcome), 3 for the
# cards and the move (the generation's one read; the cards, their dependencies, audit rows and
# generation row in one statement; the card's move to Done), 5 for the finished pipeline's
# notice (the card's documents and children, the event, webhooks, members, their settings).
QUERIES_OF_A_LAST_STAGE = 14


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the budget is PostgreSQL's: SQLite makes cards in separate statements",
)
def test_the_stage_that_makes_the_cards_and_finishes_costs_a_constant_number(story, no_enqueue):
    from pipeline.models import Run

    first, _ = queries_of_first_stage(story, no_enqueue, "Warm-up")
    with no_enqueue():
        executor.execute_run(Run.objects.get(parent_run=first).pk, "worker/1")
    run, _ = queries_of_first_stage(story, no_enqueue, "Checkout page")
    last = Run.objects.get(parent_run=run)
    with no_enqueue(), CaptureQueriesContext(connection) as captured:
        executor.execute_run(last.pk, "worker/1")
    queries = [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    last.refresh_from_db()
    assert last.status == "succeeded"
    assert run.feature.children.count() > 1  # it made the cards
    assert len(queries) <= QUERIES_OF_A_LAST_STAGE, "\n".join(q[:150] for q in queries)
