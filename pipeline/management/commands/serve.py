"""`make run`: embedded Redis (unless REDIS_URL is set), migrate, seed, then the Procfile's
web + worker + health-check worker + beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config.embedded_redis import EmbeddedRedis


class Command(BaseCommand):
    help = "Set up and start the whole app (web, worker, beat) as `make run` does."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-seed", action="store_true", help="Do not create demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        server: EmbeddedRedis | None = None
        if settings.REDIS_IS_EMBEDDED:
            server = EmbeddedRedis(Path(settings.EMBEDDED_REDIS_SOCKET))
            if server.start():
                self.stdout.write(f"Embedded Redis started on {server.socket_path}")
            else:
                self.stdout.write(f"Embedded Redis already running on {server.socket_path}")
        try:
            call_command("migrate", interactive=False, verbosity=0)
            if not options["no_seed"]:
                call_command("seed_demo")
            self._banner()
            self._run_procfile()
        finally:
            if server is not None:
                server.stop()

    def _banner(self) -> None:
        host = os.environ.get("RUNWAY_HOST", "127.0.0.1")
        port = os.environ.get("RUNWAY_PORT", "8000")
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Runway is starting on http://{host}:{port}/\n"
                "  Log in as demo / demo  (admin: http://%s:%s/admin/)\n"
                "  Ctrl-C stops web, workers, beat and the embedded Redis.\n" % (host, port)
            )
        )

    def _run_procfile(self) -> None:
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env["PYTHONUNBUFFERED"] = "1"
        command = [str(bin_dir / "honcho"), "start", "-f", str(settings.BASE_DIR / "Procfile")]
        honcho = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)

        # Ctrl-C reaches the whole terminal group, but `kill` or a supervisor signals only us:
        # pass it on so honcho stops web, worker and beat before the embedded Redis goes.
        def forward(signum: int, _frame: object) -> None:
            if honcho.poll() is None:
                honcho.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        honcho.wait()
        self.stdout.write("Stopped.")
