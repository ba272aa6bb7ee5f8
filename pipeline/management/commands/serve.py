"""`make run`: embedded Redis (unless REDIS_URL is set), migrate, seed, then the Procfile's
processes (web, worker, health-check worker, beat) under supervisord, which restarts any
that dies until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.embedded_redis import EmbeddedRedis
from config.supervision import Paths, SupervisionError, Supervisor, read_procfile, write_config


def supervisor_paths() -> Paths:
    return Paths(Path(settings.VAR_DIR) / "supervisor")


class Command(BaseCommand):
    help = "Set up and start the whole app (web, worker, beat) as `make run` does."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-seed", action="store_true", help="Do not create demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = supervisor_paths()
        running = Supervisor(paths)
        if running.running():
            raise CommandError(
                "Runway is already running from this folder "
                f"(supervisor socket {paths.socket}); stop it with Ctrl-C in its terminal."
            )
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
            self._write_config(paths)
            self._banner()
            self._supervise(paths)
        finally:
            # Last, after every process that uses it has stopped.
            if server is not None:
                server.stop()

    def _write_config(self, paths: Paths) -> None:
        try:
            specs = read_procfile(Path(settings.BASE_DIR) / "Procfile")
        except SupervisionError as exc:
            raise CommandError(str(exc)) from exc
        write_config(specs, paths, directory=Path(settings.BASE_DIR))

    def _banner(self) -> None:
        host = os.environ.get("RUNWAY_HOST", "127.0.0.1")
        port = os.environ.get("RUNWAY_PORT", "8000")
        manage = "python manage.py"
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Runway is starting on http://{host}:{port}/\n"
                f"  Log in as demo / demo  (admin: http://{host}:{port}/admin/)\n"
                "  A process that dies is restarted; Ctrl-C stops them all.\n"
                f"  Processes and pids: {manage} processes · "
                f"restart one: {manage} processes restart worker\n"
            )
        )
        self.stdout.flush()

    def _supervise(self, paths: Paths) -> None:
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env["PYTHONUNBUFFERED"] = "1"
        # The processes use the settings this command was started with (make run: development).
        env["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
        command = [str(bin_dir / "supervisord"), "-c", str(paths.config)]
        supervisord = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)

        # Ctrl-C reaches the whole terminal group, but `kill` or a service manager signals only
        # us: pass it on so supervisord stops web, worker and beat before the embedded Redis.
        def forward(signum: int, _frame: object) -> None:
            if supervisord.poll() is None:
                supervisord.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        supervisord.wait()
        self.stdout.write("Stopped.")
