"""The connection bench, as `python -m bench.connections` runs it: 300 concurrent requests and
30 open log streams against a real daphne keep PostgreSQL's connections within 30."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.integration.processes import ROOT, shared_database_url

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="connection counts are PostgreSQL's"
    ),
]


def test_300_requests_and_30_log_streams_keep_connections_within_30(
    transactional_db: None, tmp_path: Path
) -> None:
    results = tmp_path / "connections.json"
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    connection.close()  # the test's own connection is not the web process's

    done = subprocess.run(
        [sys.executable, "-m", "bench.connections", "--results", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(results.read_text())
    assert report["requests_ok"] == 300
    assert report["streams_open_through_the_burst"] == 30
    assert 1 <= report["peak_connections"] <= 30
