"""`manage.py` without settings assumes production; a missing SECRET_KEY is then one line that
says how to run the local demo's commands, never a traceback (the README's tour starts here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_command_without_settings_says_what_to_set_in_one_line() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "SECRET_KEY_FILE")
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "pipeline", "board"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("manage.py: SECRET_KEY is required")
    assert "DJANGO_SETTINGS_MODULE=config.settings.dev" in line
