"""Connections: 300 concurrent requests plus 30 open log streams against a real daphne keep the
database's connection count within a bound (target ≤ 30; PostgreSQL allows 100 by default).

The web process borrows connections from a fixed-size pool (``RUNWAY_WEB_DB_POOL_SIZE``) and
gives them back after each request and after each poll of a log stream; this measures it from
the outside, counting the bench database's rows in ``pg_stat_activity`` every 20 ms while the
load runs.

    python -m bench.connections [--requests 300] [--streams 30] [--limit 30] [--results FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psycopg

from bench.environment import ROOT, percentile, prepare


@dataclass
class Target:
    """What the load hits: a card list (queries per request) and a running run's log stream."""

    base_url: str
    token: str
    workspace: str
    run_id: int


def seed_target(base_url: str) -> Target:
    """A workspace with cards, a user with a token and a run that stays running (its log stream
    stays open)."""
    from django.contrib.auth.models import User

    from features.actions import do_create_feature, do_create_workspace
    from features.tokens import do_create_api_token
    from pipeline.models import Run, RunLog

    owner, _ = User.objects.get_or_create(username="connections")
    workspace = do_create_workspace(
        name=f"Connections {time.time_ns()}", template="quick", owner=owner
    )
    features = [do_create_feature(workspace, title=f"Card {i}", user=owner) for i in range(20)]
    run = Run.objects.create(
        workspace=workspace,
        feature=features[0],
        stage=features[0].stage,
        status=Run.Status.RUNNING,
        attempt=1,
    )
    RunLog.objects.create(run=run, seq=1, message="Working")
    _, token = do_create_api_token(owner, "connections bench")
    return Target(base_url, token, workspace.slug, run.pk)


class Sampler(threading.Thread):
    """Counts the database's client connections every `every` seconds, from outside."""

    def __init__(self, dsn: str, database: str, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.dsn, self.database, self.every = dsn, database, every
        self.peak = 0
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        # Connected to the maintenance database, so the sampler never counts itself.
        with psycopg.connect(self.dsn, dbname="postgres", autocommit=True) as conn:
            while not self.stop.is_set():
                count = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchone()
                value = int(count[0]) if count else 0
                self.samples.append(value)
                self.peak = max(self.peak, value)
                self.stop.wait(self.every)


async def _load(target: Target, requests: int, streams: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {target.token}"}
    limits = httpx2.Limits(max_connections=requests + streams + 10)
    timeout = httpx2.Timeout(120.0)
    async with httpx2.AsyncClient(
        base_url=target.base_url, headers=headers, limits=limits, timeout=timeout
    ) as client:
        opened = asyncio.Event()
        open_streams = 0
        stream_events = 0

        async def stream() -> None:
            nonlocal open_streams, stream_events
            url = f"/api/runs/{target.run_id}/logs?stream=true"
            async with client.stream("GET", url) as response:
                response.raise_for_status()
                open_streams += 1
                if open_streams == streams:
                    opened.set()
                async for line in response.aiter_lines():
                    if line.startswith(("data:", ":")):
                        stream_events += 1

        async def request() -> float:
            started = time.monotonic()
            response = await client.get(f"/api/features?workspace={target.workspace}&limit=20")
            response.raise_for_status()
            return time.monotonic() - started

        watchers = [asyncio.create_task(stream()) for _ in range(streams)]
        await asyncio.wait_for(opened.wait(), timeout=60)
        started = time.monotonic()
        results = await asyncio.gather(
            *(request() for _ in range(requests)), return_exceptions=True
        )
        burst = time.monotonic() - started
        still_open = sum(not w.done() for w in watchers)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    latencies = [r for r in results if isinstance(r, float)]
    failures = [repr(r) for r in results if not isinstance(r, float)]
    return {
        "requests": requests,
        "requests_ok": len(latencies),
        "request_failures": failures[:5],
        "streams": streams,
        "streams_open_through_the_burst": still_open,
        "stream_events": stream_events,
        "burst_seconds": round(burst, 2),
        "request_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "request_p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def measure(
    target: Target, *, dsn: str, database: str, requests: int = 300, streams: int = 30
) -> dict[str, Any]:
    """Run the load against `target` and return what it did and the peak connection count."""
    sampler = Sampler(dsn, database)
    sampler.start()
    try:
        report = asyncio.run(_load(target, requests, streams))
    finally:
        sampler.stop.set()
        sampler.join(5)
    return {
        **report,
        "peak_connections": sampler.peak,
        "samples": len(sampler.samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--streams", type=int, default=30)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument(
        "--results", default=str(ROOT / "bench" / "connections-results.json"), help="JSON file"
    )
    args = parser.parse_args()

    services = prepare()
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    from django.db import connection

    if connection.vendor != "postgresql":
        print("The connection bench needs PostgreSQL (DATABASE_URL or a local server).")
        services.close()
        return 2
    from tests.integration.processes import Stack

    # Every stream is one user's, through one token: the per-user and per-token stream caps
    # (20 and 10 by default) would refuse most of them, and this bench is about the pool.
    caps = str(args.streams + 10)
    stack = Stack(
        {
            "LOG_LEVEL": "WARNING",
            "RUNWAY_API_STREAMS_PER_USER": caps,
            "RUNWAY_API_STREAMS_PER_TOKEN": caps,
        }
    )
    try:
        base_url = stack.start_web()
        target = seed_target(base_url)
        database = str(connection.settings_dict["NAME"])
        dsn = services.database_url.replace("postgres://", "postgresql://", 1)
        connection.close()  # only the web process's connections are counted
        report = measure(
            target, dsn=dsn, database=database, requests=args.requests, streams=args.streams
        )
    finally:
        stack.stop()
        services.close()
    report["limit"] = args.limit
    report["services"] = services.description
    Path(args.results).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = (
        report["peak_connections"] <= args.limit
        and report["requests_ok"] == args.requests
        and report["streams_open_through_the_burst"] == args.streams
    )
    print(
        f"CONNECTIONS {'PASSED' if ok else 'FAILED'}: peak {report['peak_connections']} "
        f"(limit {args.limit}) with {args.requests} requests and {args.streams} streams"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
