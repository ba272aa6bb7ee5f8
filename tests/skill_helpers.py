"""A workspace's own skill, as an imported community skill would arrive."""

from __future__ import annotations

from features.models import Workspace
from skills.models import Skill


def own_skill(workspace: Workspace, slug: str = "summarise", trust: str = "community") -> Skill:
    return Skill.objects.create(
        workspace=workspace,
        slug=slug,
        version=1,
        name="Summarise",
        description="A short summary of the card.",
        trust=trust,
        output=Skill.Output.DOCUMENT,
        artifact_name="summary.md",
        prompt_template="Summarise {{title}}.",
        input_schema={
            "type": "object",
            "properties": {"title": {"type": "str", "description": "The card's title"}},
            "required": ["title"],
        },
        output_schema={"kind": "document", "artifact": "summary.md"},
        checksum="imported",
    )
