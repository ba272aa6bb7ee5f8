"""`make reset-demo`: the embedded default's database goes, so the next `make run` seeds anew."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.conf import settings


def test_it_deletes_the_sqlite_database_and_nothing_else(tmp_path: Path) -> None:
    doomed = ["runway.sqlite3", "runway.sqlite3-wal", "runway.sqlite3-shm", "celerybeat-schedule"]
    kept = ["redis.log", "supervisor/supervisord.log"]
    for name in doomed + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    subprocess.run(
        ["make", "-s", "reset-demo", f"RUNWAY_VAR_DIR={tmp_path}"],
        cwd=Path(settings.BASE_DIR),
        check=True,
        timeout=60,
    )

    assert [name for name in doomed if (tmp_path / name).exists()] == []
    assert [name for name in kept if (tmp_path / name).exists()] == kept
