"""`make bench`: queries and time per phase of a stage run, hop latency (vs a plain Celery
chain), throughput (vs bare Celery no-op tasks on the same workers), board render, push latency
and worker memory, on real worker processes. Prints one table and writes bench/results.json.

    python -m bench.run [--pipelines 200] [--throughput 1000] [--cards 2000] [--pushes 40]
                        [--phases 50] [--only phases,hop_latency,...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.environment import ROOT, Services, percentile, prepare
from bench.phases import measure as measure_phases

RESULTS = ROOT / "bench" / "results.json"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def product_workspace(name: str) -> Any:
    """A product workspace whose automatic pipeline is three stages: inbox → discovery → prd."""
    from django.contrib.auth.models import User

    from features.actions import do_create_workspace
    from features.models import Workspace

    owner, _ = User.objects.get_or_create(username="bench")
    workspace = do_create_workspace(name=name, template="product", owner=owner)
    Workspace.objects.filter(pk=workspace.pk).update(stop_stage=workspace.stages.get(key="design"))
    workspace.refresh_from_db()
    return workspace


def wait_for(condition: Any, timeout: float, what: str, *, every: float) -> None:
    """Poll `condition` every `every` seconds until it holds; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


# How often the hop measures look whether a pipeline (or chain) finished. Hops are read from
# the runs' (and tasks') own timestamps, so this sets only how much the bench's own polling
# competes with what it measures for the two cores: every 2 ms, a COUNT of the runs (a query
# and its server process) ran about 40 times per pipeline beside the hops it timed.
HOP_POLL_SECONDS = 0.02


def hop_latency(pipelines: int) -> dict[str, Any]:
    """One pipeline at a time, so a hop measures the engine, not a queue of other work."""
    from features.actions import do_create_feature
    from pipeline import engine
    from pipeline.models import Run

    workspace = product_workspace("Hops")
    hops: list[float] = []
    for i in range(pipelines):
        feature = do_create_feature(workspace, title=f"Hop {i}", user=None)
        engine.launch_pipeline(feature, None)
        wait_for(
            lambda f=feature: Run.objects.filter(feature=f, status="succeeded").count() == 3,
            30,
            f"pipeline {i}",
            every=HOP_POLL_SECONDS,
        )
        runs = list(Run.objects.filter(feature=feature).order_by("id"))
        for parent, child in itertools.pairwise(runs):
            assert child.parent_run_id == parent.pk
            assert child.claimed_at is not None
            assert parent.finished_at is not None
            hops.append((child.claimed_at - parent.finished_at).total_seconds())
    return {
        "hops": len(hops),
        "p50_ms": ms(percentile(hops, 50)),
        "p95_ms": ms(percentile(hops, 95)),
        "p99_ms": ms(percentile(hops, 99)),
    }


def celery_throughput(tasks: int, start_worker: Any, stop_workers: Any) -> dict[str, Any]:
    """Bare Celery no-op tasks per second on the same worker (2 processes), sent while no
    worker runs and drained like Runway's throughput run: first start → last end."""
    import redis
    from django.conf import settings

    from bench.noop_tasks import noop_count

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("bench:celery-starts", "bench:celery-ends")
    stop_workers()
    for _ in range(tasks):
        noop_count.apply_async()
    start_worker()
    wait_for(
        lambda: client.llen("bench:celery-ends") >= tasks,
        600,
        "the no-op tasks to drain",
        every=0.25,
    )
    starts = [float(v) for v in client.lrange("bench:celery-starts", 0, -1)]
    ends = [float(v) for v in client.lrange("bench:celery-ends", 0, -1)]
    client.close()
    seconds = max(ends) - min(starts)
    return {
        "tasks": tasks,
        "seconds": round(seconds, 2),
        "tasks_per_second": round(tasks / seconds),
    }


def celery_chain_latency(chains: int) -> dict[str, Any]:
    import redis
    from celery import chain
    from django.conf import settings

    from bench.noop_tasks import noop

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("bench:celery-hops")
    for i in range(chains):
        chain(noop.s(None), noop.s(), noop.s()).apply_async()
        wait_for(
            lambda i=i: client.llen("bench:celery-hops") >= 2 * (i + 1),
            30,
            f"chain {i}",
            every=HOP_POLL_SECONDS,
        )
    hops = [float(v) for v in client.lrange("bench:celery-hops", 0, -1)]
    client.close()
    return {
        "hops": len(hops),
        "p50_ms": ms(percentile(hops, 50)),
        "p95_ms": ms(percentile(hops, 95)),
        "p99_ms": ms(percentile(hops, 99)),
    }


class RssSampler(threading.Thread):
    """Peak resident memory of any one worker process (main or pool child)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil  # type: ignore[import-untyped]

        while not self.done.wait(0.1):
            for pid in self.pids:
                try:
                    root = psutil.Process(pid)
                    for process in [root, *root.children(recursive=True)]:
                        self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
                except psutil.Error:
                    continue


def throughput(pipelines: int, start_worker: Any, stop_workers: Any) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db.models import Max, Min

    from features.actions import do_create_feature, do_create_workspace
    from pipeline import engine
    from pipeline.models import Run

    owner, _ = User.objects.get_or_create(username="bench")
    workspace = do_create_workspace(name="Throughput", template="quick", owner=owner)
    features = [
        do_create_feature(workspace, title=f"Load {i}", user=None) for i in range(pipelines)
    ]
    # Launch everything while no worker runs, so the measure is the workers' pace and not this
    # process's launching competing with them for the two cores.
    stop_workers()
    for feature in features:
        engine.launch_pipeline(feature, None)
    worker = start_worker()
    sampler = RssSampler([worker.popen.pid])
    sampler.start()
    expected = 2 * pipelines
    wait_for(
        lambda: Run.objects.filter(workspace=workspace, status="succeeded").count() >= expected,
        600,
        "the throughput run to drain",
        # The span is read from the runs' own timestamps, so a slow poll costs no accuracy,
        # while a 2 ms one (a COUNT over the runs) took a tenth of the two cores from the
        # workers it measures.
        every=0.25,
    )
    sampler.done.set()
    span = Run.objects.filter(workspace=workspace).aggregate(
        first=Min("claimed_at"), last=Max("finished_at")
    )
    seconds = (span["last"] - span["first"]).total_seconds()
    return {
        "stage_runs": expected,
        "seconds": round(seconds, 2),
        "runs_per_second": round(expected / seconds, 1),
        "peak_worker_rss_mb": round(sampler.peak_mb, 1),
    }


def board_render(cards: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from features.actions import do_create_workspace
    from features.models import Feature, Stage
    from pipeline.models import Run

    owner, _ = User.objects.get_or_create(username="board-owner")
    workspace = do_create_workspace(name="Big board", template="delivery", owner=owner)
    stages = list(workspace.stages.filter(board=Stage.Board.FEATURE))
    todo = workspace.stages.get(key="todo")
    parents = Feature.objects.bulk_create(
        Feature(workspace=workspace, title=f"Card {i}", stage=stages[i % len(stages)], position=i)
        for i in range(cards // 2)
    )
    Feature.objects.bulk_create(
        Feature(
            workspace=workspace,
            title=f"Task {i}",
            kind="task",
            stage=todo,
            position=i,
            parent=parents[i % len(parents)],
        )
        for i in range(cards - len(parents))
    )
    Run.objects.bulk_create(
        Run(workspace=workspace, feature=p, stage=p.stage, status="succeeded") for p in parents
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner)
    url = f"/w/{workspace.slug}/"
    client.get(url)  # warm caches and templates
    timings, cpu, counts = [], [], []
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append(time.perf_counter() - started)
            # This process's CPU (Python and templates, not PostgreSQL's): on a shared machine
            # the wall time above also counts the time other processes held the cores.
            cpu.append(time.process_time() - started_cpu)
        assert response.status_code == 200
        counts.append(len(queries))
    return {
        "cards": cards,
        "queries": max(counts),
        "server_ms_median": ms(statistics.median(timings)),
        "server_cpu_ms_median": ms(statistics.median(cpu)),
        # The machine is shared: the load while measuring says how much the figure can trust.
        "load_average_1min": round(__import__("os").getloadavg()[0], 2),
    }


def push_latency(pushes: int, base_url: str) -> dict[str, Any]:
    """Publish a card change the way the engine does; time until Chromium's DOM shows it."""
    from django.contrib.auth.models import User
    from django.db import transaction
    from playwright.sync_api import sync_playwright

    from features.actions import do_create_feature, do_create_workspace
    from features.events import card_changed_on_commit
    from features.models import Feature
    from tests.chromium import CHROMIUM, CHROMIUM_ARGS

    user = User.objects.create_user("pusher", password="pusher-password")  # noqa: S106
    workspace = do_create_workspace(name="Push", template="quick", owner=user)
    feature = do_create_feature(workspace, title="Push 0", user=user)
    samples: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page()
        page.goto(f"{base_url}/login/")
        page.fill("input[name=username]", "pusher")
        page.fill("input[name=password]", "pusher-password")
        page.click("button[type=submit]")
        page.wait_for_selector("#live-status.on")
        for i in range(1, pushes + 1):
            title = f"Push {i}"
            # The page's promise resolves with the time the new title appears; the page's CSP
            # forbids eval, so it is awaited with evaluate rather than wait_for_function.
            page.evaluate(
                """([id, title]) => {
                    window.__seen = new Promise((resolve, reject) => {
                        const observer = new MutationObserver(() => {
                            const el = document.querySelector(`#card-${id} .title`);
                            if (el && el.textContent === title) {
                                observer.disconnect(); resolve(Date.now());
                            }
                        });
                        observer.observe(document.body, {subtree: true, childList: true,
                                                         characterData: true});
                        setTimeout(() => reject(new Error("no push within 10 s")), 10000);
                    });
                }""",
                [feature.pk, title],
            )
            with transaction.atomic():
                Feature.objects.filter(pk=feature.pk).update(title=title)
                feature.title = title
                card_changed_on_commit(feature)
                sent = time.time()
            samples.append(page.evaluate("() => window.__seen") / 1000 - sent)
        browser.close()
    return {
        "pushes": len(samples),
        "p50_ms": ms(percentile(samples, 50)),
        "p95_ms": ms(percentile(samples, 95)),
    }


TARGETS = {
    "queries per stage run": "≤ 12",
    "hop p50": "≤ 10 ms",
    "hop p99": "≤ 50 ms",
    "hop vs Celery chain (p50)": "≤ 3x",
    "throughput": "≥ 100 runs/s",
    "board queries (2,000 cards)": "≤ 12, constant",
    "board server time": "≤ 150 ms",
    "push p95": "≤ 100 ms",
}


def table(results: dict[str, Any]) -> str:
    hops, celery = results["hop_latency"], results["celery_chain"]
    ratio = hops["p50_ms"] / celery["p50_ms"] if celery["p50_ms"] else float("nan")
    results["hop_vs_celery_ratio_p50"] = round(ratio, 2)
    rows = [
        ("hop p50", f"{hops['p50_ms']} ms", TARGETS["hop p50"]),
        ("hop p95", f"{hops['p95_ms']} ms", ""),
        ("hop p99", f"{hops['p99_ms']} ms", TARGETS["hop p99"]),
        ("Celery chain hop p50 / p99", f"{celery['p50_ms']} / {celery['p99_ms']} ms", ""),
        ("hop vs Celery chain (p50)", f"{ratio:.2f}x", TARGETS["hop vs Celery chain (p50)"]),
        ("throughput", f"{results['throughput']['runs_per_second']} runs/s", TARGETS["throughput"]),
        (
            "board queries (2,000 cards)",
            str(results["board"]["queries"]),
            TARGETS["board queries (2,000 cards)"],
        ),
        (
            "board server time",
            f"{results['board']['server_ms_median']} ms"
            + (
                f" (CPU {results['board']['server_cpu_ms_median']} ms,"
                f" load {results['board']['load_average_1min']})"
                if "load_average_1min" in results["board"]
                else ""
            ),
            TARGETS["board server time"],
        ),
        (
            "push p50 / p95",
            f"{results['push']['p50_ms']} / {results['push']['p95_ms']} ms",
            TARGETS["push p95"],
        ),
        ("worker peak RSS", f"{results['throughput']['peak_worker_rss_mb']} MB", ""),
    ]
    if "phases" in results:
        phases = results["phases"]
        split = ", ".join(
            f"{name} {row['queries']:g}" for name, row in phases["per_stage_run"].items()
        )
        rows.insert(
            0,
            (
                "queries per stage run",
                f"{phases['queries_per_stage_run']:g} ({split})",
                TARGETS["queries per stage run"],
            ),
        )
        rows.insert(
            1,
            (
                "in-process ms per stage run",
                f"{phases['ms_per_stage_run']:g} ("
                + ", ".join(
                    f"{name} {row['ms']:g}" for name, row in phases["per_stage_run"].items()
                )
                + ")",
                "",
            ),
        )
    if "celery_throughput" in results:
        bare = results["celery_throughput"]["tasks_per_second"]
        fraction = results["throughput"]["runs_per_second"] / bare if bare else float("nan")
        results["throughput_vs_celery"] = round(fraction, 3)
        rows.insert(
            rows.index(next(r for r in rows if r[0] == "throughput")) + 1,
            ("bare Celery no-op tasks, same workers", f"{bare} tasks/s", ""),
        )
        rows.insert(
            rows.index(next(r for r in rows if r[0] == "throughput")) + 2,
            ("Runway throughput ÷ bare Celery", f"{fraction:.1%}", ""),
        )
    width = max(len(r[0]) for r in rows)
    lines = [f"Runway bench — {results['services']} — {results['machine']}"]
    if results.get("load"):
        lines.append(f"load average at start / end: {results['load']}")
    lines.append("")
    lines.append(f"| {'measure'.ljust(width)} | result | target |")
    lines.append(f"|{'-' * (width + 2)}|---|---|")
    lines += [f"| {name.ljust(width)} | {value} | {target} |" for name, value, target in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--throughput", type=int, default=1000)
    parser.add_argument("--cards", type=int, default=2000)
    parser.add_argument("--pushes", type=int, default=40)
    parser.add_argument("--phases", type=int, default=50, help="pipelines run in-process")
    parser.add_argument(
        "--only", default="", help="comma-separated measures to run, e.g. board,push (default: all)"
    )
    args = parser.parse_args()

    os.environ.setdefault("LOG_LEVEL", "WARNING")  # the in-process phases log every run
    services: Services = prepare()
    from tests.integration.processes import Stack

    stack = Stack({"RUNWAY_OFFLINE_DELAY_SECONDS": "0", "LOG_LEVEL": "WARNING"})
    stack.start_beat()  # the sweeps, as in production: nothing waits forever on a lost run
    # With --only, the other measures keep their last values from results.json.
    previous = json.loads(RESULTS.read_text()) if args.only and RESULTS.exists() else {}
    results: dict[str, Any] = {
        **previous,
        "services": services.description,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    # The machine may be shared: the load says how much the numbers can be trusted.
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:

        def stop_workers() -> None:
            for running in stack.workers:
                running.stop()

        def start_worker() -> Any:
            stop_workers()
            return stack.start_worker(
                concurrency=2, extra_args=["-I", "bench.noop_tasks"], loglevel="WARNING"
            )

        def phases() -> dict[str, Any]:
            # In this process, with no worker to race for the messages it sends.
            stop_workers()
            result = measure_phases(args.phases)
            start_worker()
            return result

        start_worker()
        steps = [
            ("phases", phases),
            ("hop_latency", lambda: hop_latency(args.pipelines)),
            ("celery_chain", lambda: celery_chain_latency(args.pipelines)),
            ("throughput", lambda: throughput(args.throughput, start_worker, stop_workers)),
            (
                "celery_throughput",
                lambda: celery_throughput(2 * args.throughput, start_worker, stop_workers),
            ),
            ("board", lambda: board_render(args.cards)),
            ("push", lambda: push_latency(args.pushes, stack.start_web())),
        ]
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        for name, measure in steps:
            if wanted and name not in wanted:
                continue
            print(f"{name}…", end=" ", flush=True)
            results[name] = measure()
            shown = {k: v for k, v in results[name].items() if k != "statements"}
            print(shown, flush=True)
    finally:
        stack.stop()
        services.close()
    results["load"] = (
        f"{load_at_start} / {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"(1, 5, 15 min; {os.cpu_count()} cores)"
    )
    text = table(results)
    Path(RESULTS).write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
