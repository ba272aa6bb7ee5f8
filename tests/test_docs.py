"""The README and docs/: every command they show is real, every link resolves, and the README's
tour runs as written (with the ids it creates in place of the examples')."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, get_commands, load_command_class

from features.models import Feature
from pipeline.models import Run
from skills.models import StageRecipe

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
MANAGE = re.compile(r"manage\.py ([^)#\n]+)")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def shell_lines(path: Path) -> list[str]:
    """Each command line of the file's sh blocks, continuation lines joined."""
    lines = []
    for lang, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if lang == "sh":
            lines += body.replace("\\\n", " ").splitlines()
    return lines


def manage_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        for line in shell_lines(path):
            for match in MANAGE.finditer(line):
                argv = shlex.split(match.group(1).strip())
                # Shell placeholders ($RUNWAY_TOKEN, USERNAME) stand for a value: any will do.
                argv = ["x" if arg.startswith("$") else arg for arg in argv]
                found.append((path.name, argv))
    return found


def test_the_docs_show_manage_commands() -> None:
    # The parse test below must have something to check: the README's tour alone shows several.
    assert len(manage_commands()) >= 10


@pytest.mark.parametrize(("doc", "argv"), manage_commands(), ids=lambda v: str(v))
def test_every_manage_command_shown_parses(doc: str, argv: list[str]) -> None:
    name, *args = argv
    commands = get_commands()
    assert name in commands, f"{doc}: no manage.py command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    try:
        parser.parse_args(args)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{doc}: `manage.py {' '.join(argv)}` does not parse ({exc})")


def test_every_make_target_shown_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    shown = {
        word
        for path in DOCS
        for line in shell_lines(path)
        for word in re.findall(r"^\s*(?:\w+=\S+ )*make ([a-z][\w-]*)", line)
    }
    assert shown, "the docs show make targets"
    assert shown <= targets, f"not in the Makefile: {shown - targets}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(path: Path) -> None:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        assert (path.parent / file_part).exists(), f"{path.name} links to missing {target}"


# --- the tour ---------------------------------------------------------------------------------


def tour_commands() -> list[list[str]]:
    """`manage.py pipeline …` lines of the README's tour, in order, without their comments."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## A ten-minute tour", 1)[1].split("\n## ", 1)[0]
    commands = []
    for lang, body in FENCE.findall(tour):
        for line in body.splitlines():
            if lang == "sh" and "manage.py pipeline" in line and "$(" not in line:
                commands.append(shlex.split(line.split("manage.py ", 1)[1], comments=True))
    return commands


def cli(argv: list[str]) -> str:
    out = io.StringIO()
    call_command(*argv, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_the_readmes_tour_runs_as_written(eager: Any) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    create, runs, show, decide = tour_commands()
    assert create[:2] == ["pipeline", "create"]

    # The tour's Accept step needs a stage that waits for a decision: Tasks, set to auto notify
    # as the tour says, so the card's pipeline stops there with its result waiting.
    quick = StageRecipe.objects.get(stage__workspace__slug="quick", stage__key="tasks")
    quick.automation = StageRecipe.Automation.AUTO_NOTIFY
    quick.save()

    with eager():
        card_id = cli(create).strip()
    feature = Feature.objects.get(pk=int(card_id))
    example = create_example_id()

    def with_id(argv: list[str]) -> list[str]:
        return [card_id if arg == example else arg for arg in argv]

    assert "architecture" in cli(with_id(runs))
    assert f"#{card_id} Checkout page" in cli(with_id(show))
    waiting = feature.runs.get(stage__key="tasks")
    assert waiting.decision == Run.Decision.PENDING

    with eager():
        assert cli(with_id(decide)).startswith(f"Accepted run #{waiting.pk}")
    feature.refresh_from_db()
    assert feature.stage.key == "done"
    assert feature.children.filter(kind=Feature.Kind.TASK).exists()


def create_example_id() -> str:
    """The id the README's create line says it prints ("e.g. 15"), used by the lines after."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"prints the id, e\.g\. (\d+)", readme)
    assert match, "the tour's create line names the id it prints"
    return match.group(1)
