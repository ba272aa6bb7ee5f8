"""skills.catalog: SKILL.md folders parse strictly, and sync makes versions, never overwrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from skills.catalog import (
    LIBRARY_DIR,
    SkillFormatError,
    load_library,
    parse_skill_dir,
    sync_definitions,
)
from skills.models import Skill

GOOD_SKILL_MD = """\
# Write haiku

Writes a haiku about the feature.

## Inputs
- title: string (required) - The card's title
- description: string (optional) - The card's description

## Outputs
- haiku.md: document - The poem

## Sections
- Poem
- Notes

## Tags
poetry, fun
"""
GOOD_PROMPT = "Write a haiku about {{title}}.\n\n{{ description }}\n\nSections: {{sections}}\n"


def _skill(
    root: Path, slug: str = "write-haiku", skill_md: str = GOOD_SKILL_MD, prompt: str = GOOD_PROMPT
) -> Path:
    folder = root / slug
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(skill_md, encoding="utf-8")
    (folder / "prompt.md").write_text(prompt, encoding="utf-8")
    return folder


def _error(folder: Path) -> SkillFormatError:
    with pytest.raises(SkillFormatError) as caught:
        parse_skill_dir(folder)
    return caught.value


LIBRARY = sorted(p.name for p in LIBRARY_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize("slug", LIBRARY)
def test_it_parses_every_builtin_skill(slug):
    definition = parse_skill_dir(LIBRARY_DIR / slug)

    assert definition.slug == slug
    assert definition.name
    assert definition.output in Skill.Output.values
    assert definition.artifact_name
    assert "title" in definition.inputs
    if definition.output != Skill.Output.TASKS:
        assert definition.sections, "documents list the sections their gate checks"


def test_it_parses_a_skill_folder(tmp_path):
    definition = parse_skill_dir(_skill(tmp_path))

    assert definition.slug == "write-haiku"
    assert definition.name == "Write haiku"
    assert definition.description == "Writes a haiku about the feature."
    assert (definition.output, definition.artifact_name) == ("document", "haiku.md")
    assert definition.sections == ["Poem", "Notes"]
    assert definition.tags == ["poetry", "fun"]
    assert definition.inputs["title"]["required"] is True
    assert definition.inputs["description"]["required"] is False
    assert definition.input_schema["required"] == ["title"]
    assert definition.output_schema == {
        "kind": "document",
        "artifact": "haiku.md",
        "sections": ["Poem", "Notes"],
    }


def test_it_refuses_a_skill_without_a_title(tmp_path):
    folder = _skill(tmp_path, skill_md="\nWrites a haiku.\n\n## Outputs\n- haiku.md: document\n")

    error = _error(folder)

    assert error.path == folder / "SKILL.md"
    assert error.line == 2
    assert str(error).startswith(f"{folder / 'SKILL.md'}:2: ")
    assert "# Skill name" in str(error)


def test_it_refuses_an_empty_skill_file(tmp_path):
    error = _error(_skill(tmp_path, skill_md=""))

    assert error.line == 1
    assert "SKILL.md" in str(error)


def test_it_refuses_an_unknown_section(tmp_path):
    skill_md = GOOD_SKILL_MD.replace("## Tags", "## Examples")
    folder = _skill(tmp_path, skill_md=skill_md)

    error = _error(folder)

    assert error.path == folder / "SKILL.md"
    assert error.line == 16
    assert f"{folder / 'SKILL.md'}:16:" in str(error)
    assert "Examples" in str(error)


def test_it_refuses_a_bad_input_line(tmp_path):
    skill_md = GOOD_SKILL_MD.replace(
        "- description: string (optional)", "- description string (optional)"
    )
    folder = _skill(tmp_path, skill_md=skill_md)

    error = _error(folder)

    assert error.line == 7
    assert f"{folder / 'SKILL.md'}:7:" in str(error)
    assert "inputs look like" in str(error)


def test_it_refuses_an_unknown_output_type(tmp_path):
    skill_md = GOOD_SKILL_MD.replace("haiku.md: document", "haiku.md: video")
    folder = _skill(tmp_path, skill_md=skill_md)

    error = _error(folder)

    assert error.line == 10
    assert f"{folder / 'SKILL.md'}:10:" in str(error)
    assert "document, tasks, score" in str(error)


def test_it_refuses_two_outputs(tmp_path):
    skill_md = GOOD_SKILL_MD.replace(
        "- haiku.md: document - The poem", "- haiku.md: document\n- extra.md: document"
    )

    error = _error(_skill(tmp_path, skill_md=skill_md))

    assert "exactly one output" in str(error)


def test_it_refuses_a_placeholder_not_declared_in_inputs(tmp_path):
    prompt = "Write a haiku about {{title}}.\n\nMood:\n{{ mood }}\n"
    folder = _skill(tmp_path, prompt=prompt)

    error = _error(folder)

    assert error.path == folder / "prompt.md"
    assert error.line == 4
    assert f"{folder / 'prompt.md'}:4:" in str(error)
    assert "mood" in str(error)


def test_it_refuses_an_undeclared_placeholder_written_with_a_tab(tmp_path):
    # The placeholder pattern allows any whitespace inside the braces, so the error must too.
    folder = _skill(tmp_path, prompt="Write a haiku about {{title}}.\n{{\tmood}}\n")

    error = _error(folder)

    assert error.path == folder / "prompt.md"
    assert error.line == 2
    assert "mood" in str(error)


def test_it_refuses_a_missing_prompt(tmp_path):
    folder = _skill(tmp_path)
    (folder / "prompt.md").unlink()

    error = _error(folder)

    assert error.path == folder / "prompt.md"


def test_it_creates_version_1_on_first_sync(tmp_path, db):
    definition = parse_skill_dir(_skill(tmp_path))

    (skill,) = sync_definitions([definition])

    assert (skill.slug, skill.version, skill.workspace) == ("write-haiku", 1, None)
    assert skill.trust == Skill.Trust.VETTED
    assert skill.prompt_template == GOOD_PROMPT
    assert skill.checksum == definition.checksum
    assert skill.output_schema["sections"] == ["Poem", "Notes"]


def test_it_leaves_an_unchanged_skill_alone(tmp_path, db):
    folder = _skill(tmp_path)
    (first,) = sync_definitions([parse_skill_dir(folder)])

    (again,) = sync_definitions([parse_skill_dir(folder)])

    assert again.pk == first.pk
    assert Skill.objects.filter(slug="write-haiku").count() == 1


def test_it_adds_version_2_when_the_prompt_changes_and_keeps_version_1(tmp_path, db):
    folder = _skill(tmp_path)
    sync_definitions([parse_skill_dir(folder)])
    (folder / "prompt.md").write_text("A better haiku about {{title}}.\n", encoding="utf-8")

    (second,) = sync_definitions([parse_skill_dir(folder)])

    assert second.version == 2
    assert second.prompt_template == "A better haiku about {{title}}.\n"
    assert list(
        Skill.objects.filter(slug="write-haiku")
        .order_by("version")
        .values_list("version", "prompt_template")
    ) == [(1, GOOD_PROMPT), (2, "A better haiku about {{title}}.\n")]


def test_it_keeps_the_trust_of_the_previous_version(tmp_path, db):
    folder = _skill(tmp_path)
    sync_definitions([parse_skill_dir(folder)], trust=Skill.Trust.EXPERIMENTAL)
    (folder / "prompt.md").write_text("Changed {{title}}\n", encoding="utf-8")

    (second,) = sync_definitions([parse_skill_dir(folder)], trust=Skill.Trust.VETTED)

    assert second.trust == Skill.Trust.EXPERIMENTAL


def test_it_versions_workspace_skills_apart_from_builtins(tmp_path, story):
    definition = parse_skill_dir(_skill(tmp_path))
    sync_definitions([definition])

    (own,) = sync_definitions([definition], workspace=story.workspace)

    assert (own.workspace, own.version) == (story.workspace, 1)


def test_it_loads_a_library_folder(tmp_path, db):
    _skill(tmp_path, "write-haiku")
    _skill(tmp_path, "write-limerick")
    (tmp_path / "README.md").write_text("not a skill", encoding="utf-8")

    definitions = load_library(tmp_path)

    assert [d.slug for d in definitions] == ["write-haiku", "write-limerick"]


def test_it_imports_nothing_from_a_library_with_one_bad_skill(tmp_path, db):
    _skill(tmp_path, "a-good-one")
    _skill(tmp_path, "b-bad-one", skill_md=GOOD_SKILL_MD.replace("## Tags", "## Nope"))
    _skill(tmp_path, "c-good-too")

    with pytest.raises(SkillFormatError, match="b-bad-one"):
        sync_definitions(load_library(tmp_path))

    assert not Skill.objects.filter(slug__in=["a-good-one", "b-bad-one", "c-good-too"]).exists()
