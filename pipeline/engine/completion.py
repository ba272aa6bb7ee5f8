"""Completion: store the result, check gates and advance the card in one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from features import events
from features.actions import unblock_dependents
from features.models import Artifact, Feature, Stage
from pipeline.engine.cards import record_move, save_feature
from pipeline.engine.generation import create_generated_cards
from pipeline.engine.locks import lock_card_of_run
from pipeline.engine.planning import board_stages, entry_status, runnable_recipe, stage_after
from pipeline.engine.runs import create_run
from pipeline.engine.steps import StepResult
from pipeline.engine.worker import usage_updates
from pipeline.models import Run, RunLog
from pipeline.runlog import append_log, flush_buffered
from skills.gates import ArtifactView, GateSpec, blocking_failures, evaluate
from skills.models import StageRecipe

Status = Run.Status
Automation = StageRecipe.Automation
OnFail = StageRecipe.OnFail


def complete_run(run_id: int, attempt: int, steps: list[StepResult], usage: dict[str, Any]) -> bool:
    """Store the result, check gates and advance the card — all or nothing, and only once.

    The first UPDATE is the fence (status=running and this attempt) and takes the run's row
    lock; the last one records the outcome, so `finished_at` is when the result was stored.
    """
    with transaction.atomic():
        feature = lock_card_of_run(run_id)
        # Not active any more from here on: the next run may be created in this transaction.
        ours = Run.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.SUCCEEDED, heartbeat_at=timezone.now()
        )
        if not ours:
            return False
        run = Run.objects.select_related("stage", "stage__recipe").get(pk=run_id)
        artifacts = _save_artifacts(run, feature, steps)
        created = create_generated_cards(run, feature, steps)
        metrics = {k: v for step in steps for k, v in step.metrics.items()}
        recipe = run.stage.recipe
        results = evaluate(
            [
                GateSpec(g.name, g.type, g.config, g.required, g.failure_message)
                for g in recipe.gates.all()
            ],
            [ArtifactView(a.name, a.kind, a.content) for a in artifacts],
            metrics,
        )
        run.status = Status.SUCCEEDED
        run.error_kind, run.error_message = "", ""
        failures = blocking_failures(results)
        stages = board_stages(feature.workspace_id, run.stage.board)
        if failures:
            _apply_gate_failure(run, feature, stages, "; ".join(f.message for f in failures))
        elif recipe.automation == Automation.AUTO_NOTIFY:
            run.decision = Run.Decision.PENDING
            feature.status = Feature.Status.AWAITING_APPROVAL
            feature.status_note = f"{run.stage.name} result is ready: accept or reject it"
            save_feature(feature, "status", "status_note")
            append_log(run.pk, "Result waits for accept or reject", attempt=attempt)
        else:
            advance(run, feature, stages)
        if created:
            events.toast_on_commit(
                run.workspace_id,
                f"Feature created! {len(created)} tasks added",
                level="success",
                feature_id=feature.pk,
                task_count=len(created),
            )
        flush_buffered(run_id)
        Run.objects.filter(pk=run_id).update(
            status=run.status,
            decision=run.decision,
            finished_at=timezone.now(),
            step_index=len(steps),
            error_kind=run.error_kind,
            error_message=run.error_message,
            result={
                # What a person gave a rerun stays on the run it shaped.
                **{k: run.result[k] for k in ("feedback", "inputs") if k in run.result},
                "steps": [s.as_dict() for s in steps],
                "gates": [r.as_dict() for r in results],
                "metrics": metrics,
                "created_cards": created,
            },
            skill_versions={s.skill: s.version for s in steps},
            **usage_updates(usage),
        )
    return True


def _save_artifacts(run: Run, feature: Feature, steps: list[StepResult]) -> list[Artifact]:
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


def advance(run: Run, feature: Feature, stages: list[Stage]) -> Run | None:
    """Move the card on and create the next run if the chain continues. Returns the next run."""
    next_stage = stage_after(stages, run.stage_id)
    if next_stage is None:
        feature.status, feature.status_note = Feature.Status.DONE, ""
        save_feature(feature, "status", "status_note")
        append_log(run.pk, "Pipeline finished: last stage of the board")
        return None
    record_move(feature, next_stage, run=run, note=f"{run.stage.name} passed its gates")
    unblock_dependents(feature, next_stage)
    remaining = list(run.pipeline_next)
    if remaining and remaining[0] == next_stage.key and runnable_recipe(next_stage) is not None:
        recipe = runnable_recipe(next_stage)
        assert recipe is not None
        status, note = entry_status(next_stage, recipe)
        next_run = create_run(
            feature,
            next_stage,
            pipeline_next=remaining[1:],
            parent=run,
            user=None,
            status=status,
            note=note,
            guard=False,
        )
        save_feature(feature, "status", "status_note", "stage", "position")
        append_log(run.pk, f"Advanced to {next_stage.key}; next run #{next_run.pk}")
        return next_run
    feature.status = Feature.Status.DONE if next_stage.is_done else Feature.Status.IDLE
    feature.status_note = ""
    save_feature(feature, "status", "status_note", "stage", "position")
    append_log(run.pk, f"Pipeline finished: card is in {next_stage.name}")
    events.toast_on_commit(
        feature.workspace_id,
        f"“{feature.title}” reached {next_stage.name}",
        level="success",
        feature_id=feature.pk,
    )
    return None


def _apply_gate_failure(run: Run, feature: Feature, stages: list[Stage], why: str) -> None:
    on_fail = run.stage.recipe.on_fail
    append_log(run.pk, f"Gates failed: {why}", level=RunLog.Level.ERROR)
    if on_fail == OnFail.REVIEW_REQUIRED:
        # The result stands but a person decides: Accept overrides the gates, Reject ends it.
        run.decision = Run.Decision.PENDING
        feature.status = Feature.Status.BLOCKED
        feature.status_note = f"Review required: {why}"[:500]
        save_feature(feature, "status", "status_note")
        return
    run.status = Status.FAILED
    run.error_kind = Run.ErrorKind.GATE
    run.error_message = why
    feature.status = Feature.Status.FAILED
    feature.status_note = f"Gate failed: {why}"[:500]
    if on_fail == OnFail.REVERT:
        index = next(i for i, s in enumerate(stages) if s.pk == run.stage_id)
        if index > 0:
            record_move(feature, stages[index - 1], run=run, note=f"Reverted: {why}"[:500])
    elif on_fail == OnFail.CREATE_QUESTIONS:
        question = Feature.objects.create(
            workspace_id=feature.workspace_id,
            title=f"Questions: {feature.title}"[:200],
            description=f"The {run.stage.name} gates failed for run #{run.pk}:\n\n{why}",
            kind=Feature.Kind.TASK,
            stage=Stage.objects.filter(workspace_id=feature.workspace_id, board=Stage.Board.WORK)
            .order_by("position")
            .first()
            or feature.stage,
            parent=feature,
            source_run=run,
            source_index=10_000,  # after any generated task of the same run
        )
        events.card_changed_on_commit(question, created=True)
    save_feature(feature, "status", "status_note", "stage", "position")
    events.toast_on_commit(
        feature.workspace_id,
        f"“{feature.title}”: gate failed — {why}",
        level="error",
        feature_id=feature.pk,
        run_id=run.pk,
    )
