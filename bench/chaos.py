"""`make chaos`: pipelines keep their promises while workers die and Redis restarts.

200 quick-template pipelines (architecture → tasks, which generates task cards) run with the
offline provider and a small random delay per step, while a supervisor SIGKILLs a worker every
few seconds and starts a new one, the Redis server (always a private one here, so it can be
killed) is restarted once, and beat is SIGKILLed and only started again a few kills later (the
workers run the recovery sweeps meanwhile). Then it checks: every pipeline completed, every
stage succeeded exactly once per pipeline, no duplicate task cards, nothing left queued or
running.

    python -m bench.chaos [--pipelines 200] [--kill-every 3] [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from bench.environment import ROOT, prepare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    services = prepare(own_redis=True)
    from django.contrib.auth.models import User
    from django.db.models import Count

    from features.actions import do_create_feature, do_create_workspace
    from features.models import Feature
    from pipeline import engine
    from pipeline.models import Run
    from tests.integration.processes import Stack

    owner, _ = User.objects.get_or_create(username="chaos")
    workspace = do_create_workspace(name="Chaos", template="quick", owner=owner)
    # The workers' four slots bound this run, not the workspace's run limit (3 by default).
    engine.update_workspace_settings(workspace, {"max_concurrent_runs": 4})
    features = [
        do_create_feature(workspace, title=f"Chaos {i}", user=None) for i in range(args.pipelines)
    ]
    stack = Stack({"RUNWAY_OFFLINE_JITTER_SECONDS": "0.15", "LOG_LEVEL": "WARNING"})
    kills = redis_restarts = beat_kills = 0
    beat_down_since: float | None = None
    without_beat = 0.0
    try:
        # Everything is launched before any worker starts, so the kills land while the work
        # is being done (launching 200 pipelines on a loaded machine took longer than the
        # workers needed to finish them, and a run once ended with no kill at all).
        for feature in features:
            engine.launch_pipeline(feature, None)
        print(f"launched {len(features)} pipelines on {services.description}", flush=True)
        started = time.monotonic()
        stack.start_beat()
        for _ in range(2):
            stack.start_worker(concurrency=2, loglevel="WARNING")

        def finished() -> int:
            return Feature.objects.filter(
                pk__in=[f.pk for f in features], stage__key="done"
            ).count()

        next_kill = time.monotonic() + args.kill_every
        while finished() < len(features):
            now = time.monotonic()
            if now - started > args.timeout:
                print(f"TIMEOUT after {args.timeout:.0f} s", flush=True)
                break
            if now >= next_kill:
                victim = random.choice([w for w in stack.workers if w.alive()])
                victim.kill()
                kills += 1
                stack.start_worker(concurrency=2, loglevel="WARNING")
                next_kill = time.monotonic() + args.kill_every
                if kills == 2 and stack.beat is not None:
                    stack.beat.kill()  # no beat from here: the workers sweep
                    beat_kills += 1
                    beat_down_since = time.monotonic()
                if kills == 6 and beat_down_since is not None:
                    without_beat += time.monotonic() - beat_down_since
                    beat_down_since = None
                    stack.start_beat()
                if kills == 3 and services._embedded is not None:
                    services._embedded.stop()  # type: ignore[attr-defined]
                    services._embedded.start()  # type: ignore[attr-defined]
                    redis_restarts += 1
                done = finished()
                print(
                    f"  {now - started:5.1f} s: {done}/{len(features)} done, "
                    f"{kills} kills, {redis_restarts} Redis restarts, "
                    f"beat {'down' if beat_down_since is not None else 'up'}",
                    flush=True,
                )
            time.sleep(0.2)
        drained = time.monotonic() - started
        if beat_down_since is not None:
            without_beat += time.monotonic() - beat_down_since
    finally:
        stack.stop()

    runs = Run.objects.filter(workspace=workspace)
    per_stage = runs.filter(status="succeeded").values("feature", "stage").annotate(n=Count("id"))
    duplicated_steps = sum(row["n"] - 1 for row in per_stage if row["n"] > 1)
    completed = Feature.objects.filter(pk__in=[f.pk for f in features], stage__key="done").count()
    tasks = Feature.objects.filter(parent__in=features, kind="task")
    duplicate_cards = (
        tasks.values("parent", "title").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    report: dict[str, Any] = {
        "pipelines": len(features),
        "completed": completed,
        "lost": len(features) - completed,
        "duplicated_steps": duplicated_steps,
        "duplicate_task_cards": duplicate_cards,
        "left_queued_or_running": runs.filter(status__in=["queued", "running"]).count(),
        "worker_kills": kills,
        "redis_restarts": redis_restarts,
        "beat_kills": beat_kills,
        "seconds_without_beat": round(without_beat, 1),
        "rescued_runs": runs.filter(attempt__gt=1).count(),
        "drain_seconds": round(drained, 1),
        "services": services.description,
    }
    services.close()
    (ROOT / "bench" / "chaos-results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = (
        report["lost"] == 0
        and report["duplicated_steps"] == 0
        and report["duplicate_task_cards"] == 0
        and report["left_queued_or_running"] == 0
    )
    if ok and (kills == 0 or redis_restarts == 0):
        # Nothing was broken while the work ran: the run proves nothing.
        print("CHAOS INCONCLUSIVE: the work finished before the faults; use more --pipelines")
        return 1
    print("CHAOS PASSED: 0 lost, 0 duplicated" if ok else "CHAOS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
