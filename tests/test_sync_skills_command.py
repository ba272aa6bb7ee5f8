"""manage.py sync_skills: skill folders into versioned rows, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from skills.management.commands.sync_skills import Command
from skills.models import Skill

GOOD = """# Summarise
A short summary of the card.

## Inputs
- title: string (required) - The card's title

## Outputs
- summary.md: document - The summary

## Sections
- Summary
"""


def write_skill(root: Path, slug: str, skill_md: str = GOOD, prompt: str = "Sum up {{title}}.\n"):
    folder = root / slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(skill_md)
    (folder / "prompt.md").write_text(prompt)
    return folder


@pytest.fixture(autouse=True)
def _keep_the_test_database_open(monkeypatch):
    # run_from_argv closes every connection when it ends, as a process about to exit may.
    monkeypatch.setattr("django.db.connections.close_all", lambda: None)


def run(*args: str) -> int:
    """The command as `manage.py` runs it: its exit status."""
    try:
        Command().run_from_argv(["manage.py", "sync_skills", *args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_it_imports_a_folder_into_a_workspace_as_community_skills(story, tmp_path, capsys):
    write_skill(tmp_path, "summarise")

    status = run("--workspace", story.workspace.slug, "--path", str(tmp_path))

    assert status == 0
    skill = Skill.objects.get(workspace=story.workspace, slug="summarise")
    assert (skill.version, skill.trust, skill.source) == (1, "community", "local")
    assert skill.output_schema["sections"] == ["Summary"]
    assert "summarise v1 (new, community)" in capsys.readouterr().out


def test_it_syncs_the_built_in_library(db, capsys):
    assert run() == 0
    assert Skill.objects.filter(workspace__isnull=True, slug="write-spec").exists()
    assert "into built-in skills" in capsys.readouterr().out


def test_a_malformed_skill_md_names_file_and_line_and_imports_nothing(story, tmp_path, capsys):
    write_skill(tmp_path, "a-good-one")
    bad = write_skill(tmp_path, "b-bad", GOOD.replace("## Sections", "## Extras"))
    before = Skill.objects.count()

    status = run("--workspace", story.workspace.slug, "--path", str(tmp_path))

    assert status == 1
    err = capsys.readouterr().err
    assert f"{bad / 'SKILL.md'}:10: unknown section 'Extras'" in err
    assert "nothing was imported" in err
    assert Skill.objects.count() == before


def test_an_undeclared_placeholder_names_the_prompt_line(story, tmp_path, capsys):
    bad = write_skill(tmp_path, "leaky", prompt="Line one\nUse {{secret}}\n")

    assert run("--workspace", story.workspace.slug, "--path", str(tmp_path)) == 1
    assert f"{bad / 'prompt.md'}:2: placeholder {{{{secret}}}}" in capsys.readouterr().err


def test_changed_content_is_a_new_version_and_the_old_one_stays(story, tmp_path):
    folder = write_skill(tmp_path, "summarise")
    call_command("sync_skills", workspace=story.workspace.slug, path=tmp_path)
    call_command("sync_skills", workspace=story.workspace.slug, path=tmp_path)  # unchanged
    (folder / "prompt.md").write_text("Summarise {{title}} in one line.\n")

    call_command("sync_skills", workspace=story.workspace.slug, path=tmp_path)

    versions = Skill.objects.filter(workspace=story.workspace, slug="summarise").order_by("version")
    assert [(s.version, s.prompt_template) for s in versions] == [
        (1, "Sum up {{title}}.\n"),
        (2, "Summarise {{title}} in one line.\n"),
    ]


def test_it_refuses_an_unknown_workspace(db, tmp_path, capsys):
    assert run("--workspace", "nowhere", "--path", str(tmp_path)) == 1
    assert "No workspace 'nowhere'" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["SKILL.md", "prompt.md"])
def test_a_folder_without_its_files_is_an_error(story, tmp_path, capsys, missing):
    (write_skill(tmp_path, "half") / missing).unlink()

    assert run("--workspace", story.workspace.slug, "--path", str(tmp_path)) == 1
    assert f"{missing}:0: missing {missing}" in capsys.readouterr().err
