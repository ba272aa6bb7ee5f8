"""`make bench` "phases": where a stage run's queries and time go, phase by phase.

Stage runs of quick pipelines (architecture → tasks, offline provider) are executed in this
process, one after another, exactly as a worker does (``pipeline.executor.execute_run``), while
every SQL statement is attributed to the phase it ran in (``connection.execute_wrapper``):

* **claim** — ``engine.claim_run``: lock, admission, the fenced UPDATE, reading the run;
* **execute** — the executor's own work: recipe, inputs, the provider's step, log lines;
* **complete** — ``engine.complete_run`` minus advance: fence, artifacts, gates, outcome;
* **advance** — ``completion.advance``: generated cards, the card's move, the next run;
* **events** — the after-commit callbacks: the next run's message, the board's and logs' events.

Time is wall time spent in each phase (nested phases are not counted twice).

    python -m bench.phases [--pipelines 50] [--sql]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

PHASES = ("claim", "execute", "complete", "advance", "events")


class PhaseRecorder:
    """Counts queries and wall time per phase; the innermost open phase owns what runs."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.queries: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.statements: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._since = 0.0

    def _charge(self) -> None:
        now = time.perf_counter()
        if self.stack:
            self.seconds[self.stack[-1]] += now - self._since
        self._since = now

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self.stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self.stack.pop()

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def phased(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return func(*args, **kwargs)

        return phased

    def execute_wrapper(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        owner = self.stack[-1] if self.stack else "outside"
        self.queries[owner] += 1
        # Savepoint names differ every time: count them as one statement.
        shown = re.sub(r'"s\d+_x\d+"', '"…"', " ".join(sql.split()))
        self.statements[owner][shown[:160]] += 1
        return execute(sql, params, many, context)


@contextlib.contextmanager
def instrumented(recorder: PhaseRecorder) -> Iterator[None]:
    """Patch the phase boundaries for the block (this process only)."""
    from django.db import connection, transaction

    from pipeline import engine
    from pipeline.engine import completion

    patches = [
        (engine, "claim_run", recorder.wrap("claim", engine.claim_run)),
        (engine, "complete_run", recorder.wrap("complete", engine.complete_run)),
        (completion, "advance", recorder.wrap("advance", completion.advance)),
    ]
    original_on_commit = transaction.on_commit

    def on_commit(func: Callable[[], Any], using: Any = None, robust: bool = False) -> None:
        original_on_commit(recorder.wrap("events", func), using=using, robust=robust)

    patches.append((transaction, "on_commit", on_commit))
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        with connection.execute_wrapper(recorder.execute_wrapper):
            yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def measure(pipelines: int) -> dict[str, Any]:
    """Run `pipelines` quick pipelines' stage runs in this process; per stage run: queries and
    milliseconds of each phase. Leaves no message behind for a worker (the queue is purged)."""
    from django.contrib.auth.models import User

    from config.celery import app
    from features.actions import do_create_feature, do_create_workspace
    from pipeline import engine, executor
    from pipeline.models import Run

    owner, _ = User.objects.get_or_create(username="bench")
    workspace = do_create_workspace(name="Phases", template="quick", owner=owner)
    features = [
        do_create_feature(workspace, title=f"Phases {i}", user=None) for i in range(pipelines)
    ]
    first = [engine.launch_pipeline(f, None).run.pk for f in features]
    # Warm caches (templates, skills, connections) with one pipeline outside the measure.
    warm: int | None = first.pop()
    while warm is not None:
        executor.execute_run(warm, "bench/phases")
        warm = Run.objects.filter(parent_run_id=warm).values_list("pk", flat=True).first()
    recorder = PhaseRecorder()
    stage_runs = 0
    with instrumented(recorder):
        for run_id in first:
            current: int | None = run_id
            while current is not None:
                with recorder.phase("execute"):
                    executor.execute_run(current, "bench/phases")
                stage_runs += 1
                current = (
                    Run.objects.filter(parent_run_id=current, status="queued")
                    .values_list("pk", flat=True)
                    .first()
                )
    recorder.queries.pop("outside", None)  # the bench's own look-ups
    app.control.purge()
    not_succeeded = Run.objects.filter(workspace=workspace).exclude(status="succeeded").count()
    assert not_succeeded == 0, f"{not_succeeded} stage runs did not succeed"
    per_run = {
        phase: {
            "queries": round(recorder.queries[phase] / stage_runs, 2),
            "ms": round(recorder.seconds[phase] * 1000 / stage_runs, 2),
        }
        for phase in PHASES
    }
    return {
        "stage_runs": stage_runs,
        "per_stage_run": per_run,
        "queries_per_stage_run": round(sum(recorder.queries[p] for p in PHASES) / stage_runs, 2),
        "ms_per_stage_run": round(sum(recorder.seconds[p] for p in PHASES) * 1000 / stage_runs, 2),
        "statements": {phase: dict(recorder.statements[phase].most_common()) for phase in PHASES},
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| phase | queries / stage run | ms / stage run |", "|---|---|---|"]
    for phase, row in result["per_stage_run"].items():
        lines.append(f"| {phase} | {row['queries']} | {row['ms']} |")
    lines.append(
        f"| **total** | **{result['queries_per_stage_run']}** | **{result['ms_per_stage_run']}** |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--sql", action="store_true", help="print each phase's statements")
    args = parser.parse_args()

    import os

    from bench.environment import prepare

    os.environ.setdefault("LOG_LEVEL", "WARNING")
    services = prepare()
    try:
        result = measure(args.pipelines)
    finally:
        services.close()
    if args.sql:
        for phase, statements in result["statements"].items():
            print(f"\n== {phase}")
            for sql, count in statements.items():
                print(f"{count / result['stage_runs']:6.2f}  {sql}")
        print()
    print(f"{result['stage_runs']} stage runs, in this process ({services.description})\n")
    print(table(result))


if __name__ == "__main__":
    main()
