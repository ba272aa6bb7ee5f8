"""Execute one claimed run: its recipe's steps through providers, then hand over to completion.

Only the engine changes a run's state; this module talks to providers, keeps the claim alive
and decides which engine call a step's outcome needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
from functools import partial
from typing import Any

from django.conf import settings

from config.logs import log_context
from features import events
from features.models import Artifact, Feature
from pipeline import engine, limits, pricing
from pipeline.db_faults import DB_FAULTS, with_db_retry
from pipeline.engine import definitions
from pipeline.heartbeats import Claim, heartbeating
from pipeline.models import Run, RunLog
from pipeline.providers import get_provider
from pipeline.providers.base import ProviderError, StepCancelled, StepOutput, StepRequest
from pipeline.runlog import append_log, buffering, flush_buffered
from pipeline.storable import storable, storable_text
from skills.models import Gate, RecipeStep
from skills.validation import blocking_errors

logger = logging.getLogger(__name__)

USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    # A Decimal set on a step's usage by _run_step from pipeline.pricing; None when the
    # server reported no usage, which makes the run's cost unknown rather than $0.
    "cost_usd",
)

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def this_worker_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def render_prompt(template: str, inputs: dict[str, str]) -> str:
    prompt = _PLACEHOLDER.sub(lambda m: inputs.get(m.group(1), ""), template)
    if inputs.get("feedback") and not any(
        m.group(1) == "feedback" for m in _PLACEHOLDER.finditer(template)
    ):
        prompt += f"\n\nFeedback on the previous result, to address:\n{inputs['feedback']}\n"
    return prompt


def artifact_key(name: str) -> str:
    """spec.md → spec_md, spec-review.md → spec_review_md: how prompts name documents."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def _documents_of(feature: Feature) -> list[tuple[str, str]]:
    """(name, content) of the card's documents, latest version of each first: as the claim
    read them with the card's lock (PostgreSQL), else read now."""
    if hasattr(feature, "claimed_documents"):
        held = feature.claimed_documents
        if isinstance(held, str | bytes):
            held = json.loads(held)
        return [(str(name), str(content)) for name, content in held or []]
    return list(
        Artifact.objects.filter(feature=feature, kind=Artifact.Kind.DOCUMENT)
        .order_by("name", "-version")
        .values_list("name", "content")
    )


def build_inputs(run: Run, step: RecipeStep, earlier: list[engine.StepResult]) -> dict[str, str]:
    feature = run.feature
    inputs: dict[str, str] = {"title": feature.title, "description": feature.description}
    inputs["kind"] = feature.kind  # an epic's task list is stories, a story's is subtasks
    documents: dict[str, str] = {}
    for name, content in _documents_of(feature):
        documents.setdefault(name, content)
    for result in earlier:
        documents[result.artifact_name] = result.text
    for name, content in documents.items():
        inputs[artifact_key(name)] = content
    inputs["context"] = "\n\n".join(documents.values())
    inputs["sections"] = ", ".join(step.skill.output_schema.get("sections", []))
    # An edit-and-rerun: the person's edited inputs replace the stored ones, and their feedback
    # reaches the prompt as {{feedback}} (render_prompt appends it when the prompt lacks one).
    edited = run.result.get("inputs")
    if isinstance(edited, dict):
        inputs.update({str(k): str(v) for k, v in edited.items()})
    if run.result.get("feedback"):
        inputs["feedback"] = str(run.result["feedback"])
    # A recipe step may feed a named input from another one (input_mapping: {"spec": "prd_md"}).
    for target, source in step.input_mapping.items():
        inputs[str(target)] = inputs.get(str(source), "")
    return inputs


def _log_line(run_id: int, attempt: int, message: str) -> None:
    append_log(run_id, message, attempt=attempt)


def execute_run(run_id: int, worker_id: str | None = None) -> None:
    """Claim the run and execute its remaining steps. A database fault during the claim
    propagates (the task sends its message again later); after the claim, see db_faults.
    Every log line meanwhile carries the run's ids (config.logs)."""
    with log_context(run_id=run_id, worker_id=worker_id):
        run = engine.claim_run(run_id, worker_id or this_worker_id())
        if run is None:
            logger.debug("run %s not claimable (duplicate delivery or finished)", run_id)
            return
        with (
            log_context(
                card_id=run.feature_id,
                workspace_id=run.workspace_id,
                attempt=run.attempt,
                worker_id=run.worker_id,
            ),
            buffering(run_id, run.attempt),
            heartbeating(run_id, run.attempt) as claim,
        ):
            append_log(run_id, f"Attempt {run.attempt} started on {run.worker_id}")
            try:
                _execute(run, claim)
            except DB_FAULTS:
                # The database stayed away past the retries: the run stays running, its
                # heartbeat goes stale, and rescue requeues it to resume after the last
                # recorded step.
                logger.exception("run %s left for rescue: the database is unavailable", run_id)


def carried_steps(run: Run, steps: list[RecipeStep]) -> list[engine.StepResult]:
    """The results this run carries from a failed attempt that still fit the recipe as it is
    now: a step's result is reused only while every step up to it is the same step (skill,
    version and settings), so an edited recipe never feeds old outputs to the wrong step."""
    carried = [engine.StepResult.from_dict(raw) for raw in run.result.get("steps", [])]
    kept: list[engine.StepResult] = []
    for result, step in zip(carried, steps, strict=False):
        if result.fingerprint not in ("", step_fingerprint(step)) or (
            result.skill,
            result.version,
        ) != (step.skill.slug, step.skill.version):
            break
        kept.append(result)
    if len(kept) < len(carried):
        append_log(
            run.pk,
            f"The recipe changed since these results were saved: {len(kept)} of "
            f"{len(carried)} saved step result(s) still fit and are reused",
            level=RunLog.Level.WARNING,
        )
    return kept


def step_fingerprint(step: RecipeStep) -> str:
    """What makes a recipe step the same step across edits (its row is replaced on save)."""
    identity = [
        step.skill.slug,
        step.skill.version,
        step.order,
        step.params,
        step.input_mapping,
        step.output_mapping,
        step.provider,
        step.model,
    ]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _execute(run: Run, claim: Claim) -> None:
    # A recipe edited into a broken state (e.g. in the admin) fails here, before it costs
    # anything, with what to fix, rather than midway with a provider's error.
    # The steps with their skills and recipe, and the gates, read once for the check and
    # again for completion; this process may hold them already, read under the definitions'
    # count the claim saw.
    steps, recipe, gates = definitions.recipe_of(
        run.stage_id, getattr(run, "definitions_version", None)
    )
    if recipe is not None and (problems := blocking_errors(recipe, steps=steps, gates=gates)):
        engine.fail_run(
            run.pk,
            run.attempt,
            f"Recipe invalid: {' '.join(problems)} Fix the {recipe.stage.name} recipe, then Retry.",
        )
        return
    done = carried_steps(run, steps)
    carried = len(done)
    usage: dict[str, Any] = dict.fromkeys(USAGE_FIELDS, 0)
    for index, step in enumerate(steps[len(done) :], start=len(done)):
        # Right after the claim the run is ours; between steps, ask the database.
        if claim.cancelled.is_set() or (
            index > carried and not engine.still_running(run.pk, run.attempt)
        ):
            append_log(
                run.pk,
                "Stopped between steps: the run was cancelled or taken over",
                level=RunLog.Level.WARNING,
            )
            return
        try:
            output = _run_step(run, claim, step, index, len(steps), done)
        except DB_FAULTS as exc:
            # The database, not the step, failed (e.g. reading its inputs, writing its log).
            with_db_retry(
                partial(
                    engine.retry_later,
                    run.pk,
                    run.attempt,
                    step_index=index,
                    retry_count=step.retry_count,
                    message=f"database unavailable: {exc}",
                    retry_after=None,
                ),
                what=f"requeueing run {run.pk}",
                interrupted=claim.cancelled,
            )
            return
        if output is None:
            return
        for key in USAGE_FIELDS:
            value = getattr(output.usage, key, 0)
            usage[key] = None if value is None or usage[key] is None else usage[key] + value
        # Model text is made storable here, where it enters the engine (PostgreSQL refuses NUL).
        done.append(
            engine.StepResult(
                skill=step.skill.slug,
                version=step.skill.version,
                output=step.skill.output,
                artifact_name=step.skill.artifact_name,
                text=storable_text(output.text),
                data=storable(output.data),
                metrics=output.metrics,
                truncated=output.truncated,
                fingerprint=step_fingerprint(step),
            )
        )
        if index + 1 < len(steps):
            recorded = with_db_retry(
                partial(engine.record_step, run.pk, run.attempt, list(done), dict(usage)),
                what=f"recording step {index + 1} of run {run.pk}",
                interrupted=claim.cancelled,
            )
            if not recorded:
                return
            usage = dict.fromkeys(USAGE_FIELDS, 0)
    _complete(run, claim, done, usage, gates)


def _complete(
    run: Run,
    claim: Claim,
    done: list[engine.StepResult],
    usage: dict[str, Any],
    gates: list[Gate],
) -> None:
    """Store the result; a database fault is retried with the same outputs (the completion is
    one fenced transaction, so a retry after a lost commit finds it stored and stops)."""

    def stored() -> bool:
        return Run.objects.filter(
            pk=run.pk,
            attempt=run.attempt,
            status__in=(Run.Status.SUCCEEDED, Run.Status.FAILED),
            finished_at__isnull=False,
        ).exists()

    faults = 0

    def complete() -> bool:
        nonlocal faults
        try:
            # The next run's message leaves first; the board's events right after.
            with events.held():
                return engine.complete_run(run.pk, run.attempt, done, usage, gates=gates)
        except DB_FAULTS:
            faults += 1
            raise

    try:
        completed = with_db_retry(
            complete, what=f"completing run {run.pk}", interrupted=claim.cancelled
        )
        if not completed and faults:
            completed = with_db_retry(stored, what=f"checking run {run.pk}")
    except DB_FAULTS:
        raise
    except Exception as exc:
        # A bug, not the database: without this the run would stay "running", be rescued, and
        # pay for its steps again.
        logger.exception("completing run %s failed", run.pk)
        engine.fail_run(run.pk, run.attempt, f"Could not store the result: {exc!r}")
        return
    if not completed:
        append_log(
            run.pk,
            "Result discarded: the run was cancelled or taken over before it finished",
            level=RunLog.Level.WARNING,
        )


def _price(
    run: Run, provider: Any, provider_name: str, request: StepRequest, output: StepOutput
) -> None:
    """The step's cost joins its token counts (the run's cost_usd accumulates it): USD from the
    admin's prices, $0 for a model with no price, None (unknown) when no usage was reported."""
    model = request.model or provider.default_model()
    cost: Any = None
    if not output.usage.reported:
        append_log(
            run.pk,
            f"{provider_name}/{model} reported no token usage for this step: its cost is "
            "unknown (shown as unknown, not $0, and not counted in the monthly budget)",
            level=RunLog.Level.WARNING,
        )
    else:
        cost, priced = pricing.step_cost(provider_name, model, output.usage)
        if not priced:
            append_log(run.pk, f"No price for {provider_name}/{model} in the admin: $0")
    setattr(output.usage, "cost_usd", cost)  # noqa: B010 - not a field of Usage


def _run_step(
    run: Run,
    claim: Claim,
    step: RecipeStep,
    index: int,
    total: int,
    done: list[engine.StepResult],
) -> StepOutput | None:
    """One provider call. None when the run cannot go on (the engine was told why)."""
    skill = step.skill
    provider_name = step.provider or step.recipe.provider or run.provider or "offline"
    append_log(
        run.pk, f"Step {index + 1}/{total}: {skill.slug} v{skill.version} via {provider_name}"
    )
    inputs = build_inputs(run, step, done)
    request = StepRequest(
        skill_slug=skill.slug,
        output=skill.output,
        artifact_name=skill.artifact_name,
        prompt=render_prompt(skill.prompt_template, inputs),
        inputs=inputs,
        sections=list(skill.output_schema.get("sections", [])),
        model=step.model or step.recipe.model or run.model,
        timeout_seconds=step.timeout_seconds,
        attempt=run.attempt,
        cancelled=claim.cancelled,
        on_log=partial(_log_line, run.pk, run.attempt),
    )

    def log_live(message: str) -> None:
        # A remote call's progress lines are written as they come, not when the step ends.
        append_log(run.pk, message, attempt=run.attempt)
        flush_buffered(run.pk)

    try:
        provider = get_provider(provider_name)
        if not getattr(provider, "is_instant", lambda _: False)(request):
            flush_buffered(run.pk)  # people watching a slow step see its log now
        remote = getattr(provider, "concurrency_limited", False)  # a paid, shared LLM
        if remote:
            request.on_log = log_live
            # Waiting for a shared slot is not the step's time: the heartbeat keeps the claim.
            claim.arm(
                settings.RUNWAY_PROVIDER_SLOT_WAIT_SECONDS
                + step.timeout_seconds
                + settings.RUNWAY_STEP_GRACE_SECONDS,
                step_index=index,
                retry_count=step.retry_count,
                message=f"{skill.slug} timed out waiting for a provider slot",
            )
        with limits.slot_for(provider, provider_name, run.workspace_id, claim.cancelled, log_live):
            claim.arm(
                step.timeout_seconds + settings.RUNWAY_STEP_GRACE_SECONDS,
                step_index=index,
                retry_count=step.retry_count,
                message=f"{skill.slug} timed out after {step.timeout_seconds} s",
            )
            output = provider.generate(request)
        if remote:
            _price(run, provider, provider_name, request, output)
        if output.truncated:
            append_log(
                run.pk,
                f"{step.skill.artifact_name} was cut off at the model's output limit: stored "
                "and marked truncated",
                level=RunLog.Level.WARNING,
            )
        return output
    except limits.NoSlot as exc:
        engine.retry_later(
            run.pk,
            run.attempt,
            step_index=index,
            retry_count=step.retry_count,
            message=str(exc),
            retry_after=None,
        )
    except StepCancelled:
        if claim.timed_out:
            # The heartbeat thread already ended the run as a transient failure at the deadline.
            append_log(
                run.pk,
                f"Step abandoned: {skill.slug} outlived its timeout",
                level=RunLog.Level.WARNING,
            )
        else:
            append_log(
                run.pk,
                "Step interrupted: the run was cancelled or taken over",
                level=RunLog.Level.WARNING,
            )
    except ProviderError as exc:
        if exc.transient:
            engine.retry_later(
                run.pk,
                run.attempt,
                step_index=index,
                retry_count=step.retry_count,
                message=str(exc),
                retry_after=exc.retry_after,
            )
        else:
            engine.fail_run(run.pk, run.attempt, str(exc))
    except DB_FAULTS:
        raise  # the database failed, not the step: _execute requeues the run as transient
    except Exception as exc:
        logger.exception("step %s of run %s crashed", skill.slug, run.pk)
        engine.fail_run(run.pk, run.attempt, f"Internal error in {skill.slug}: {exc!r}")
    return None
