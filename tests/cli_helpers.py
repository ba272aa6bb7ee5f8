"""`manage.py pipeline ...` run in-process, as the CLI tests drive it.

The environment defaults the CLI reads (`RUNWAY_WORKSPACE`, `RUNWAY_CLI_USER`) are cleared for
every test by tests/conftest.py, so a developer's shell never leaks into a test.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.management import call_command


def pipeline(*args: str) -> str:
    """Run `manage.py pipeline *args` in-process and return what it printed on stdout."""
    out = io.StringIO()
    call_command("pipeline", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def pipeline_json(*args: str) -> Any:
    """The same with `--json`, parsed."""
    return json.loads(pipeline(*args, "--json"))
