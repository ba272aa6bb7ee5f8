"""Test settings: the same URLs as dev, but a test database that worker processes can share."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

DEBUG = False
SECRET_KEY = "test-only-insecure-key"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# Integration tests start real worker processes and a live daphne server; they must open the
# same test database, so it needs a file (not :memory:) and a name given explicitly (channels'
# live server would otherwise prefix "test_" twice on PostgreSQL).
_default = DATABASES["default"]
if _default["ENGINE"] == "django.db.backends.sqlite3":
    # One file per test session, so two suites on one machine never share a database.
    _default["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"runway-test-{os.getpid()}.sqlite3")
    }
else:
    _default["TEST"] = {"NAME": f"test_{_default['NAME']}"}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Serve static files from the app folders as in development: tests never run collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# pytest's own process keeps its rows in a transaction that is never committed, which the
# heartbeat thread (its own connection) cannot see: it would take every run in flight for
# stopped. So in-process it stays idle; real workers started by the integration tests and the
# benchmarks get their fast clocks from the environment (tests/integration/processes.py).
RUNWAY_HEARTBEAT_SECONDS = int(os.environ.get("RUNWAY_HEARTBEAT_SECONDS", "3600"))
RUNWAY_CANCEL_CHECK_SECONDS = float(os.environ.get("RUNWAY_CANCEL_CHECK_SECONDS", "3600"))
