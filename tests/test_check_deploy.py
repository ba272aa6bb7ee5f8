"""`manage.py check --deploy` passes on the production settings, warnings included."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from django.conf import settings


def test_it_passes_the_deployment_checklist(tmp_path):
    # Only what a deployment sets: the test run's own variables (DJANGO_ALLOW_ASYNC_UNSAFE for
    # the browser tests, say) would be reported as if production had them.
    env = {
        **{k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ},
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "example.com",
        "RUNWAY_VAR_DIR": str(tmp_path),  # nothing of the shared var/ folder is touched
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
