"""The one rule for what a card shows, derived from its latest run and its dependencies."""

from __future__ import annotations

import pytest

from features.models import Feature
from pipeline.engine.card_state import Blocker, CardFacts, LatestRun, derive
from pipeline.models import Run

S, C = Run.Status, Feature.Status
HERE, ELSEWHERE = 1, 2


def run(status: str, *, decision: str = "auto", kind: str = "", note: str = "", stage: int = HERE):
    return LatestRun(
        status=status, decision=decision, error_kind=kind, card_note=note, stage_id=stage
    )


def facts(latest: LatestRun | None, *, finished: bool = False, blockers: tuple[Blocker, ...] = ()):
    return CardFacts(stage_id=HERE, stage_finished=finished, latest=latest, blockers=blockers)


SCHEMA, API = Blocker(3, "Schema"), Blocker(4, "API")
FAILED_SCHEMA = Blocker(3, "Schema", "failed")


@pytest.mark.parametrize(
    ("card", "shows"),
    [
        pytest.param(facts(None), (C.IDLE, ""), id="no run: idle"),
        pytest.param(facts(run(S.RUNNING)), (C.RUNNING, ""), id="running"),
        pytest.param(
            facts(run(S.QUEUED, note="Waiting for a free slot"), blockers=(SCHEMA,)),
            (C.QUEUED, "Waiting for a free slot"),
            id="an active run speaks first",
        ),
        pytest.param(
            facts(run(S.AWAITING_APPROVAL, note="Spec waits for someone to start it")),
            (C.AWAITING_APPROVAL, "Spec waits for someone to start it"),
            id="awaiting approval",
        ),
        pytest.param(
            facts(run(S.SUCCEEDED, decision="pending", note="Spec result is ready")),
            (C.AWAITING_APPROVAL, "Spec result is ready"),
            id="auto_notify result waits",
        ),
        pytest.param(
            facts(run(S.SUCCEEDED, decision="pending", kind="gate", note="Review required: x")),
            (C.BLOCKED, "Review required: x"),
            id="review_required waits, blocked",
        ),
        pytest.param(
            facts(run(S.FAILED, note="Failed: boom"), finished=True),
            (C.FAILED, "Failed: boom"),
            id="a failure where the card is",
        ),
        pytest.param(
            facts(run(S.FAILED, note="Failed: boom", stage=ELSEWHERE), finished=True),
            (C.DONE, ""),
            id="moved to done after a failure elsewhere",
        ),
        pytest.param(
            facts(run(S.SUCCEEDED), blockers=(SCHEMA, API)),
            (C.BLOCKED, "Blocked by “Schema”, “API”: finish them first"),
            id="blocked by unfinished dependencies, by name",
        ),
        pytest.param(
            facts(run(S.SUCCEEDED), blockers=(FAILED_SCHEMA, API)),
            (C.BLOCKED, "Blocked by “Schema” (failed), “API”"),
            id="a dependency that failed is named as failed",
        ),
        pytest.param(
            facts(run(S.WAITING), blockers=(SCHEMA, API)),
            (C.BLOCKED, "Waiting for “Schema”, “API”"),
            id="a waiting run waits for its dependencies by name",
        ),
        pytest.param(
            facts(run(S.WAITING), blockers=(Blocker(3, "Schema", "rejected"),)),
            (C.BLOCKED, "Blocked by “Schema” (rejected)"),
            id="a waiting run whose dependency was rejected says so",
        ),
        pytest.param(facts(None, finished=True, blockers=(SCHEMA,)), (C.DONE, ""), id="done wins"),
        pytest.param(
            facts(run(S.CANCELLED, note="Pipeline stopped by alice")),
            (C.IDLE, "Pipeline stopped by alice"),
            id="stopped",
        ),
        pytest.param(
            facts(run(S.SUCCEEDED, decision="rejected", note="Result rejected by bob")),
            (C.IDLE, "Result rejected by bob"),
            id="rejected",
        ),
    ],
)
def test_it_derives_the_cards_status_from_its_runs_and_dependencies(card, shows):
    assert derive(card) == shows
