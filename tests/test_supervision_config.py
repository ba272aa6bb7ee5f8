"""The supervisord config `manage.py serve` writes from the Procfile, read by supervisord's own
parser: every Procfile process supervised, restarted on death, its command run as written."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions

from config.supervision import (
    START_RETRIES,
    Paths,
    SupervisionError,
    read_procfile,
    write_config,
)


def parsed(procfile: str, tmp_path: Path) -> dict[str, object]:
    source = tmp_path / "Procfile"
    source.write_text(procfile)
    paths = Paths(tmp_path / "supervisor")
    write_config(read_procfile(source), paths, directory=tmp_path)
    options = ServerOptions()
    options.configfile = str(paths.config)
    options.process_config(do_usage=False)
    return {group.name: group.process_configs[0] for group in options.process_group_configs}


def test_it_supervises_every_process_of_the_projects_procfile(tmp_path: Path) -> None:
    names = [spec.name for spec in read_procfile(Path(settings.BASE_DIR) / "Procfile")]

    programs = parsed((Path(settings.BASE_DIR) / "Procfile").read_text(), tmp_path)

    assert set(programs) == set(names)
    assert {"web", "worker", "beat"} <= set(programs)
    for program in programs.values():
        assert program.autorestart is RestartUnconditionally  # type: ignore[attr-defined]
        assert program.startretries == START_RETRIES  # type: ignore[attr-defined]


def test_it_runs_the_procfile_line_through_a_shell_that_execs_it(tmp_path: Path) -> None:
    programs = parsed(
        "worker: celery -A config worker -n extra@%h --concurrency=${N:-2}\n", tmp_path
    )

    # exec: the supervised pid is celery's own; %h survives supervisord's %-interpolation.
    assert programs["worker"].command == (  # type: ignore[attr-defined]
        "/bin/sh -c 'exec celery -A config worker -n extra@%h --concurrency=${N:-2}'"
    )


def test_it_names_the_process_in_its_environment(tmp_path: Path) -> None:
    programs = parsed("web: daphne config.asgi:application\n", tmp_path)

    assert programs["web"].environment == {"RUNWAY_PROCESS": "web"}  # type: ignore[attr-defined]


def test_it_refuses_a_procfile_line_it_cannot_read(tmp_path: Path) -> None:
    source = tmp_path / "Procfile"
    source.write_text("web: daphne app\nthis is not a process\n")

    with pytest.raises(SupervisionError, match=r"Procfile:2: expected `name: command`"):
        read_procfile(source)


def test_the_processes_command_says_in_one_line_when_nothing_runs(tmp_path: Path, settings) -> None:
    settings.VAR_DIR = tmp_path

    with pytest.raises(CommandError, match=r"not running here .*start them with `make run`\.$"):
        call_command("processes", "pid", "worker", stdout=io.StringIO())


def test_a_socket_path_too_long_for_unix_moves_to_a_short_one(tmp_path: Path) -> None:
    short = Paths(tmp_path / "s")
    deep = Paths(tmp_path / ("d" * 120) / "supervisor")

    assert short.socket == tmp_path / "s" / "supervisord.sock"
    assert len(os.fsencode(deep.socket)) < 100
    assert deep.socket != Paths(tmp_path / ("e" * 120)).socket  # one socket per folder
    assert deep.socket == Paths(tmp_path / ("d" * 120) / "supervisor").socket  # stable
