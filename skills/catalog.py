"""Skill folders (SKILL.md + prompt.md) parsed into definitions and synced into Skill rows.

SKILL.md format::

    # Name
    One paragraph of description.
    ## Inputs
    - name: type (required|optional) - what it is
    ## Outputs
    - artifact-name: document|tasks|score - what it is
    ## Sections            (documents: the headings the output must have)
    - Heading
    ## Tags
    comma, separated
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from features.models import Workspace
from skills.models import Skill

LIBRARY_DIR = Path(__file__).resolve().parent / "library"

_INPUT = re.compile(
    r"^- (?P<name>\w+): (?P<type>[\w\[\]]+)(?: \((?P<req>required|optional)\))?(?: - (?P<doc>.*))?$"
)
_OUTPUT = re.compile(r"^- (?P<name>[\w.\-]+): (?P<type>\w+)(?: - (?P<doc>.*))?$")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_KNOWN_SECTIONS = {"inputs", "outputs", "sections", "tags"}


class SkillFormatError(Exception):
    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass
class SkillDefinition:
    slug: str
    name: str
    description: str
    output: str
    artifact_name: str
    prompt_template: str
    inputs: dict[str, dict[str, object]] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def checksum(self) -> str:
        payload = "\x00".join(
            [
                self.name,
                self.description,
                self.output,
                self.artifact_name,
                self.prompt_template,
                repr(sorted(self.inputs.items())),
                "\x01".join(self.sections),
                ",".join(self.tags),
            ]
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def input_schema(self) -> dict[str, object]:
        return {
            "type": "object",
            "properties": {
                k: {"type": v["type"], "description": v["doc"]} for k, v in self.inputs.items()
            },
            "required": [k for k, v in self.inputs.items() if v["required"]],
        }

    @property
    def output_schema(self) -> dict[str, object]:
        schema: dict[str, object] = {"kind": self.output, "artifact": self.artifact_name}
        if self.sections:
            schema["sections"] = self.sections
        return schema


def parse_skill_dir(folder: Path) -> SkillDefinition:
    skill_md = folder / "SKILL.md"
    prompt_md = folder / "prompt.md"
    if not skill_md.is_file():
        raise SkillFormatError(skill_md, 0, "missing SKILL.md")
    if not prompt_md.is_file():
        raise SkillFormatError(prompt_md, 0, "missing prompt.md")
    text = skill_md.read_text(encoding="utf-8")
    name = ""
    description: list[str] = []
    section = ""
    inputs: dict[str, dict[str, object]] = {}
    outputs: list[tuple[str, str]] = []
    sections: list[str] = []
    tags: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            continue
        if line.startswith("# "):
            if name:
                raise SkillFormatError(
                    skill_md, number, "a second '# ' title; use '## ' for sections"
                )
            name = line[2:].strip()
            continue
        if line.startswith("## "):
            section = line[3:].strip().lower()
            if section not in _KNOWN_SECTIONS:
                raise SkillFormatError(
                    skill_md,
                    number,
                    f"unknown section {line[3:]!r}; expected one of "
                    "Inputs, Outputs, Sections, Tags",
                )
            continue
        if not name:
            raise SkillFormatError(skill_md, number, "SKILL.md must start with '# Skill name'")
        if section == "":
            description.append(line.strip())
        elif section == "inputs":
            match = _INPUT.match(line)
            if not match:
                raise SkillFormatError(
                    skill_md, number, "inputs look like '- name: type (required) - description'"
                )
            inputs[match["name"]] = {
                "type": match["type"],
                "required": match["req"] == "required",
                "doc": match["doc"] or "",
            }
        elif section == "outputs":
            match = _OUTPUT.match(line)
            if not match or match["type"] not in Skill.Output.values:
                raise SkillFormatError(
                    skill_md,
                    number,
                    f"outputs look like '- name.md: type - description' with type one of "
                    f"{', '.join(Skill.Output.values)}",
                )
            outputs.append((match["name"], match["type"]))
        elif section == "sections":
            if not line.startswith("- "):
                raise SkillFormatError(skill_md, number, "sections are listed as '- Heading'")
            sections.append(line[2:].strip())
        elif section == "tags":
            tags.extend(t.strip() for t in line.split(",") if t.strip())
    if not name:
        raise SkillFormatError(skill_md, 1, "SKILL.md must start with '# Skill name'")
    if len(outputs) != 1:
        raise SkillFormatError(skill_md, 1, "declare exactly one output under '## Outputs'")
    prompt = prompt_md.read_text(encoding="utf-8")
    allowed = set(inputs) | {"sections"}
    for match in _PLACEHOLDER.finditer(prompt):
        if match.group(1) not in allowed:
            raise SkillFormatError(
                prompt_md,
                prompt.count("\n", 0, match.start()) + 1,
                f"placeholder {{{{{match.group(1)}}}}} is not declared in SKILL.md's Inputs",
            )
    artifact_name, output = outputs[0]
    return SkillDefinition(
        slug=folder.name,
        name=name,
        description=" ".join(description),
        output=output,
        artifact_name=artifact_name,
        prompt_template=prompt,
        inputs=inputs,
        sections=sections,
        tags=tags,
    )


def load_library(path: Path = LIBRARY_DIR) -> list[SkillDefinition]:
    """Parse every skill folder first, so one bad file imports nothing."""
    return [parse_skill_dir(folder) for folder in sorted(path.iterdir()) if folder.is_dir()]


def sync_definitions(
    definitions: list[SkillDefinition],
    *,
    workspace: Workspace | None = None,
    trust: str = Skill.Trust.VETTED,
) -> list[Skill]:
    """Make each definition the latest version of its slug; unchanged content is left alone."""
    synced: list[Skill] = []
    with transaction.atomic():
        for definition in definitions:
            latest = (
                Skill.objects.select_for_update()
                .filter(workspace=workspace, slug=definition.slug)
                .order_by("-version")
                .first()
            )
            if latest is not None and latest.checksum == definition.checksum:
                synced.append(latest)
                continue
            synced.append(
                Skill.objects.create(
                    workspace=workspace,
                    slug=definition.slug,
                    version=1 if latest is None else latest.version + 1,
                    name=definition.name,
                    description=definition.description,
                    source=Skill.Source.LOCAL,
                    trust=latest.trust if latest is not None else trust,
                    output=definition.output,
                    artifact_name=definition.artifact_name,
                    prompt_template=definition.prompt_template,
                    input_schema=definition.input_schema,
                    output_schema=definition.output_schema,
                    tags=definition.tags,
                    checksum=definition.checksum,
                )
            )
    return synced


def latest_skill(slug: str, workspace: Workspace | None = None) -> Skill:
    """The newest version, preferring a workspace's own skill over the built-in one."""
    if workspace is not None:
        own = Skill.objects.filter(workspace=workspace, slug=slug).order_by("-version").first()
        if own is not None:
            return own
    builtin = Skill.objects.filter(workspace__isnull=True, slug=slug).order_by("-version").first()
    if builtin is None:
        raise Skill.DoesNotExist(f"No skill {slug!r}; run `manage.py sync_skills`.")
    return builtin
