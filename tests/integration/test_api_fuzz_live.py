"""schemathesis against the running API (a real daphne on the test database): every check it
has (server errors, status codes, content types, headers, response schemas, schema-valid data
accepted, schema-invalid data refused, auth), in all its phases. `make fuzz` runs it with
RUNWAY_FUZZ_EXAMPLES examples per operation (default 20: about five minutes); `make test`
runs the in-process tests/test_schemathesis.py instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import engine
from tests.api_helpers import token_for
from tests.engine_helpers import card

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

EXAMPLES = os.environ.get("RUNWAY_FUZZ_EXAMPLES", "20")


def test_schemathesis_finds_nothing_against_the_running_api(story, stack) -> None:
    # A finished pipeline and an idle card, so generated ids sometimes hit real rows.
    stack.env["RUNWAY_API_LAUNCHES_PER_MINUTE"] = "100000"
    stack.start_worker()
    launched = engine.launch_pipeline(card(story.workspace, "Seeded"), story.owner)
    card(story.workspace, "Idle card")
    base = stack.start_web()
    st = Path(sys.executable).parent / "st"

    result = subprocess.run(
        [
            str(st),
            "run",
            f"{base}/api/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            "--request-timeout",
            "15",
            "--header",
            f"Authorization: Bearer {token_for(story.owner)}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )

    assert launched.run.pk
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # The closing line: "No issues found in …", or only warnings (e.g. ids it never hit).
    summary = result.stdout.strip().splitlines()[-1]
    assert "failure" not in summary, result.stdout[-6000:]
    assert "error" not in summary, result.stdout[-6000:]
