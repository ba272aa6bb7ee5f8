"""Completion: store the result, check gates and advance the card in one transaction."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from features import events, notices
from features.models import Artifact, Feature, Stage
from pipeline.engine import definitions, transitions
from pipeline.engine.card_state import (
    CardFacts,
    LatestRun,
    active_card_status,
    card_status,
    engine_transaction,
    touch_active,
    touch_known,
)
from pipeline.engine.cards import record_move
from pipeline.engine.generation import (
    apply_generated_work,
    generated_items,
    list_problem,
    open_questions,
)
from pipeline.engine.locks import lock_card_of_run
from pipeline.engine.planning import (
    entry_status,
    next_stage,
    runnable_recipe,
    stage_by_id,
)
from pipeline.engine.runs import create_run
from pipeline.engine.steps import StepResult
from pipeline.engine.trees import plural, run_ended
from pipeline.engine.waiting import wait_for_delivery
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log, flush_buffered
from skills.gates import ArtifactView, GateSpec, blocking_failures, evaluate
from skills.models import Gate, StageRecipe

Status = Run.Status
Automation = StageRecipe.Automation
OnFail = StageRecipe.OnFail


def complete_run(
    run_id: int,
    attempt: int,
    steps: list[StepResult],
    usage: dict[str, Any],
    *,
    gates: list[Gate] | None = None,
) -> bool:
    """Store the result, check gates and advance the card — all or nothing, and only once.

    The first UPDATE is the fence (status=running and this attempt) and takes the run's row
    lock; the last one records the outcome, so `finished_at` is when the result was stored.
    Generated cards are made only once the gates passed (in `advance`). `gates` are the
    recipe's gates when the caller read them already (the executor does, to validate the
    recipe before the first step); None reads them here. Returns False when the run is no
    longer this attempt's (cancelled or taken over): nothing is written.
    """
    with engine_transaction():
        feature = lock_card_of_run(run_id)
        # Not active any more from here on: the next run may be created in this transaction.
        run = transitions.succeed(run_id, attempt, feature_id=feature.pk)
        if run is None:
            return False
        # Every stage of the workspace in one query: the run's own (with its recipe) is there.
        every_stage = definitions.stages_of(
            feature.workspace_id, getattr(run, "definitions_version", None)
        )
        run.stage = stage_by_id(every_stage, run.stage_id)
        stages = [s for s in every_stage if s.board == run.stage.board]
        artifacts = _save_artifacts(run, feature, steps)
        metrics = {k: v for step in steps for k, v in step.metrics.items()}
        recipe = run.stage.recipe
        results = evaluate(
            [
                GateSpec(g.name, g.type, g.config, g.required, g.failure_message)
                for g in (recipe.gates.all() if gates is None else gates)
            ],
            [ArtifactView(a.name, a.kind, a.content) for a in artifacts],
            metrics,
        )
        run.status = Status.SUCCEEDED
        run.error_kind, run.error_message, run.card_note = "", "", ""
        run.result = {
            # What a person gave a rerun stays on the run it shaped.
            **{k: run.result[k] for k in ("feedback", "inputs") if k in run.result},
            "steps": [s.as_dict() for s in steps],
            "gates": [r.as_dict() for r in results],
            "metrics": metrics,
        }
        # A generated list that cannot become cards (a dependency cycle) is refused like a gate.
        problems = [f.message for f in blocking_failures(results)]
        problems += filter(None, [list_problem(generated_items(run))])
        if problems:
            _apply_gate_failure(run, feature, stages, "; ".join(problems))
        elif recipe.automation == Automation.AUTO_NOTIFY:
            run.decision = Run.Decision.PENDING
            run.card_note = f"{run.stage.name} result is ready: accept or reject it"
            append_log(run.pk, "Result waits for accept or reject", attempt=attempt)
        else:
            advance(run, feature, stages, every_stage, completing=True)
        # The buffered log lines and the outcome go in one statement (on PostgreSQL).
        transitions.record_outcome(
            run_id,
            attempt,
            carry=lambda outcome: flush_buffered(run_id, along=outcome),
            status=run.status,
            feature_id=feature.pk,
            decision=run.decision,
            step_index=len(steps),
            error_kind=run.error_kind,
            error_message=run.error_message,
            card_note=run.card_note[:500],
            result=run.result,
            skill_versions={s.skill: s.version for s in steps},
            usage=usage,
        )
        if run.batch_id is not None:
            run_ended(run_id)
        if run.decision == Run.Decision.PENDING or run.status == Status.FAILED:
            notices.emit(
                notices.AWAITING_DECISION
                if run.decision == Run.Decision.PENDING
                else notices.RUN_FAILED,
                workspace_id=run.workspace_id,
                feature_id=feature.pk,
                run_id=run_id,
                text=run.card_note,
            )
    return True


def _save_artifacts(run: Run, feature: Feature, steps: list[StepResult]) -> list[Artifact]:
    """Each step's document as the next version of its name on the card (one INSERT on
    PostgreSQL, which numbers the versions itself; a read and an INSERT elsewhere)."""
    if connection.vendor == "postgresql" and steps:
        return _insert_versioned(run, feature, steps)
    names = [s.artifact_name for s in steps]
    latest = dict(
        Artifact.objects.filter(feature=feature, name__in=names)
        .values("name")
        .annotate(top=Max("version"))
        .values_list("name", "top")
    )
    artifacts = []
    for step in steps:
        version = latest.get(step.artifact_name, 0) + 1
        latest[step.artifact_name] = version
        is_json = step.output == "tasks"
        artifacts.append(
            Artifact(
                feature=feature,
                run=run,
                name=step.artifact_name,
                version=version,
                kind=Artifact.Kind.JSON if is_json else Artifact.Kind.DOCUMENT,
                content=step.text,
                truncated=step.truncated,
                data=step.data,
            )
        )
    Artifact.objects.bulk_create(artifacts)
    return artifacts


def _insert_versioned(run: Run, feature: Feature, steps: list[StepResult]) -> list[Artifact]:
    artifacts = [
        Artifact(
            feature=feature,
            run=run,
            name=step.artifact_name,
            kind=Artifact.Kind.JSON if step.output == "tasks" else Artifact.Kind.DOCUMENT,
            content=step.text,
            truncated=step.truncated,
            data=step.data,
            created_at=timezone.now(),
        )
        for step in steps
    ]
    table = connection.ops.quote_name(Artifact._meta.db_table)
    # Versions continue each name's numbering on the card; two steps of one name take two.
    sql = f"""
        INSERT INTO {table}
            (feature_id, run_id, name, kind, content, data, version, truncated, created_at)
        SELECT %s, %s, a.name, a.kind, a.content, a.data,
               COALESCE((SELECT MAX(old.version) FROM {table} AS old
                         WHERE old.feature_id = %s AND old.name = a.name), 0)
                 + ROW_NUMBER() OVER (PARTITION BY a.name ORDER BY a.ord),
               a.truncated, %s
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[], %s::boolean[])
             WITH ORDINALITY AS a(name, kind, content, data, truncated, ord)
        ORDER BY a.ord
        RETURNING id, name, version"""  # noqa: S608
    params: list[Any] = [
        feature.pk,
        run.pk,
        feature.pk,
        artifacts[0].created_at,
        [a.name for a in artifacts],
        [a.kind for a in artifacts],
        [a.content for a in artifacts],
        [json.dumps(a.data) for a in artifacts],
        [a.truncated for a in artifacts],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # Within a name, versions follow the steps' order.
    numbered = {name: sorted(r for r in rows if r[1] == name) for name in {r[1] for r in rows}}
    for artifact in artifacts:
        artifact.pk, _, artifact.version = min(numbered[artifact.name], key=lambda r: r[2])
        numbered[artifact.name].remove((artifact.pk, artifact.name, artifact.version))
    return artifacts


def advance(
    run: Run,
    feature: Feature,
    stages: list[Stage],
    every_stage: list[Stage] | None = None,
    *,
    completing: bool = False,
) -> Run | None:
    """The run's result stands (gates passed, or a person accepted it): make its generated
    cards, move the card on and create the next run if the chain continues. Returns the next
    run. `stages`: the run's board's; `every_stage`: the workspace's, when read already.
    `completing`: called by the completion of `run`, which is therefore the card's latest run
    and holds its outcome in memory."""
    reconciled = apply_generated_work(run, feature, every_stage)
    # A batch's runs are told once, by the batch's final toast ("24 subtasks added to 6 stories").
    quiet = run.batch_id is not None
    if reconciled is not None and reconciled.added and not quiet:
        # Named by kind: "6 stories added", "4 subtasks added" (a story's tasks are subtasks).
        word = str(Feature.Kind(reconciled.kind).label).lower()
        if reconciled.kind == Feature.Kind.TASK and feature.kind == Feature.Kind.STORY:
            word = "subtask"
        events.toast_on_commit(
            run.workspace_id,
            f"{plural(len(reconciled.added), word)} added to “{feature.title}”",
            level="success",
            feature_id=feature.pk,
            run_id=run.pk,
            task_count=len(reconciled.added),
            # What the card made stays on screen when "reached Done" replaces its run's toast.
            toast_key=f"work-{feature.pk}",
        )
    target, continues = next_stage(stages, run)
    if target is None:
        append_log(run.pk, "Pipeline finished: last stage of the board")
        _finished(run, feature, f"“{feature.title}” finished on the last stage of its board")
        here = next((s for s in every_stage or stages if s.pk == feature.stage_id), None)
        if completing and here is not None and not getattr(feature, "has_dependencies", True):
            touch_known(feature.pk, feature.workspace_id, _ended_in(run, here))
        return None
    recipe = runnable_recipe(target) if continues else None
    status, note = entry_status(target, recipe) if recipe is not None else ("", "")
    # What the card will show is known before it moves, so its move stores it (no second
    # write, no read-back): the next run speaks for it, or, when the pipeline ends here and
    # nothing can hold it (no dependencies), this run's outcome in the target stage does.
    ended: CardFacts | None = None
    if recipe is not None:
        shown: tuple[str, str] | None = active_card_status(
            LatestRun(status, Run.Decision.AUTO, "", note[:500], target.pk)
        )
    elif completing and not getattr(feature, "has_dependencies", True):
        ended = _ended_in(run, target)
        shown = card_status(ended)
    else:
        shown = None
    record_move(feature, target, run=run, note=f"{run.stage.name} passed its gates", shown=shown)
    remaining = list(run.pipeline_next)
    if recipe is not None:
        next_run = create_run(
            feature,
            target,
            pipeline_next=remaining[1:],
            parent=run,
            user=None,
            status=status,
            note=note,
            guard=False,
            trigger=Run.Trigger.PIPELINE,
            batch_id=run.batch_id,
        )
        if next_run.status in (Status.QUEUED, Status.AWAITING_APPROVAL):
            # The card's latest run is this new one: its status follows from it alone.
            latest = transitions.latest_of(next_run)
            touch_active(
                feature.pk,
                feature.workspace_id,
                latest,
                stored=shown is not None and active_card_status(latest) == shown,
            )
        append_log(run.pk, f"Advanced to {target.key}; next run #{next_run.pk}")
        return next_run
    held = wait_for_delivery(run, feature, target, stages)
    if held is not None:
        append_log(run.pk, f"Pipeline waits in {target.name} for its dependencies; run #{held.pk}")
        return held
    if ended is not None:
        touch_known(feature.pk, feature.workspace_id, ended, stored=True)
    append_log(run.pk, f"Pipeline finished: card is in {target.name}")
    _finished(run, feature, f"“{feature.title}” reached {target.name}")
    if not quiet:
        events.toast_on_commit(
            feature.workspace_id,
            f"“{feature.title}” reached {target.name}",
            level="success",
            feature_id=feature.pk,
        )
    return None


def _ended_in(run: Run, stage: Stage) -> CardFacts:
    """The facts of a card without dependencies whose pipeline ends with `run` in `stage`: the
    run is its latest (it was running, so no other run could start), with the outcome the
    completion is about to record."""
    latest = LatestRun(
        Status.SUCCEEDED, run.decision, run.error_kind, run.card_note[:500], run.stage_id
    )
    return CardFacts(
        stage_id=stage.pk,
        stage_finished=bool(stage.is_done or stage.is_live),
        latest=latest,
        blockers=(),
    )


def _finished(run: Run, feature: Feature, text: str) -> None:
    notices.emit(
        notices.PIPELINE_FINISHED,
        workspace_id=feature.workspace_id,
        feature_id=feature.pk,
        run_id=run.pk,
        text=text,
        card=feature,
        run=run,
    )


def _apply_gate_failure(run: Run, feature: Feature, stages: list[Stage], why: str) -> None:
    on_fail = run.stage.recipe.on_fail
    append_log(run.pk, f"Gates failed: {why}", level=RunLog.Level.ERROR)
    if on_fail == OnFail.REVIEW_REQUIRED:
        # The result stands but a person decides: Accept overrides the gates, Reject ends it.
        run.decision = Run.Decision.PENDING
        run.error_kind, run.error_message = Run.ErrorKind.GATE, why
        run.card_note = f"Review required: {why}"
        return
    run.status = Status.FAILED
    run.error_kind = Run.ErrorKind.GATE
    run.error_message = why
    run.card_note = f"Gate failed: {why}"
    if on_fail == OnFail.REVERT:
        index = next(i for i, s in enumerate(stages) if s.pk == run.stage_id)
        if index > 0:
            record_move(feature, stages[index - 1], run=run, note=f"Reverted: {why}"[:500])
    elif on_fail == OnFail.CREATE_QUESTIONS:
        open_questions(run, feature, why)
    events.toast_on_commit(
        feature.workspace_id,
        f"“{feature.title}”: gate failed — {why}",
        level="error",
        feature_id=feature.pk,
        run_id=run.pk,
    )
