"""docs/api.md's curl script, run as written against a real daphne and a real worker."""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

from django.core.management import call_command

from features.models import Feature

SCRIPT = re.compile(r"```sh\n(#!/bin/sh\n.*?)```", re.S)


def test_the_api_docs_curl_script_runs_a_whole_pipeline(stack, tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    match = SCRIPT.search(docs)
    assert match, "docs/api.md shows a whole-pipeline script"
    script = tmp_path / "pipeline.sh"
    script.write_text(match.group(1), encoding="utf-8")
    call_command("seed_demo", stdout=io.StringIO())
    token = io.StringIO()
    call_command("create_api_token", "demo", stdout=token)
    base = stack.start_web(wait=False)  # daphne boots while the worker does
    stack.start_worker()
    stack.wait_for_web()

    done = subprocess.run(
        ["sh", str(script)],
        env={**os.environ, "RUNWAY_URL": base, "RUNWAY_TOKEN": token.getvalue().strip()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    created = Feature.objects.get(title="Saved cards")
    assert f"Created card #{created.pk}" in done.stdout
    tasks = list(created.children.filter(kind=Feature.Kind.TASK).values_list("title", flat=True))
    assert tasks
    assert all(f'task: "{title}"' in done.stdout for title in tasks)
    assert "-> succeeded" in done.stderr
