"""`manage.py processes`: look at, restart or add the processes `make run` supervises.

Talks to the supervisord that `manage.py serve` started (config.supervision). Errors are one
line on stderr with a non-zero exit, e.g. when nothing is running.
"""

from __future__ import annotations

import re
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.supervision import SupervisionError, Supervisor, program_section, read_procfile
from pipeline.management.commands.serve import supervisor_paths

_ADDED = re.compile(r"^worker-(\d+)$")


class Command(BaseCommand):
    help = "Status, pids, restart and add-worker for the processes `make run` supervises."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION")
        sub.add_parser("status", help="Each process with its state and pid (the default).")
        pid = sub.add_parser("pid", help="Print one process's pid, e.g. `pid worker`.")
        pid.add_argument("name")
        restart = sub.add_parser("restart", help="Stop (warmly) and start one process.")
        restart.add_argument("name")
        sub.add_parser("add-worker", help="Start one more Celery worker (until make run stops).")
        remove = sub.add_parser("remove", help="Stop and forget a worker added with add-worker.")
        remove.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        supervisor = Supervisor(supervisor_paths())
        action = (options.get("action") or "status").replace("-", "_")
        try:
            getattr(self, f"do_{action}")(supervisor, options)
        except SupervisionError as exc:
            raise CommandError(str(exc)) from exc

    def do_status(self, supervisor: Supervisor, options: dict[str, Any]) -> None:
        for info in supervisor.processes():
            pid = f"pid {info['pid']}" if info["pid"] else ""
            self.stdout.write(f"{info['name']:<12} {info['statename']:<9} {pid}".rstrip())

    def do_pid(self, supervisor: Supervisor, options: dict[str, Any]) -> None:
        self.stdout.write(str(supervisor.pid(options["name"])))

    def do_restart(self, supervisor: Supervisor, options: dict[str, Any]) -> None:
        pid = supervisor.restart(options["name"])
        self.stdout.write(f"Restarted {options['name']}: pid {pid}")

    def do_add_worker(self, supervisor: Supervisor, options: dict[str, Any]) -> None:
        worker = next(
            (s for s in read_procfile(Path(settings.BASE_DIR) / "Procfile") if s.name == "worker"),
            None,
        )
        if worker is None:
            raise CommandError("The Procfile has no `worker` line to copy.")
        taken = [int(m[1]) for p in supervisor.processes() if (m := _ADDED.match(p["name"]))]
        name = f"worker-{max(taken, default=1) + 1}"
        # Its own Celery node name, so its heartbeat row and the board count it separately.
        section = program_section(
            name,
            f"{worker.command} -n {name}@%h",
            directory=Path(settings.BASE_DIR),
            autostart=False,
        )
        pid = supervisor.add_program(name, section)
        self.stdout.write(f"Added {name}: pid {pid}")

    def do_remove(self, supervisor: Supervisor, options: dict[str, Any]) -> None:
        name = options["name"]
        if not _ADDED.match(name):
            raise CommandError(f"Only workers added with add-worker can be removed, not {name!r}.")
        supervisor.remove_program(name)
        self.stdout.write(f"Removed {name}")
