"""manage.py sync_skills [--workspace SLUG] [--path DIR]: skill folders into versioned Skill rows.

Every folder is parsed before anything is written, and the writes share one transaction, so a
malformed SKILL.md imports nothing and names its file and line. Changed content becomes a new
version; a version a past run used is never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from features.models import Workspace
from skills.catalog import LIBRARY_DIR, SkillFormatError, load_library, sync_definitions
from skills.models import Skill


class Command(BaseCommand):
    help = "Read skill folders (SKILL.md + prompt.md) into the skills catalog."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workspace",
            help="Store them as this workspace's own skills (community until vetted); "
            "default: the built-in skills every workspace shares (vetted).",
        )
        parser.add_argument(
            "--path", type=Path, default=LIBRARY_DIR, help="Folder of skill folders."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder of skill folders.")
        workspace = None
        if options["workspace"]:
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"No workspace {options['workspace']!r}.")
        try:
            definitions = load_library(path)
        except SkillFormatError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from exc
        trust = Skill.Trust.VETTED if workspace is None else Skill.Trust.COMMUNITY
        before = set(Skill.objects.filter(workspace=workspace).values_list("pk", flat=True))
        synced = sync_definitions(definitions, workspace=workspace, trust=trust)
        for skill in synced:
            state = "new" if skill.pk not in before else "unchanged"
            self.stdout.write(f"{skill.slug} v{skill.version} ({state}, {skill.trust})")
        created = sum(1 for s in synced if s.pk not in before)
        where = f"workspace {workspace.slug}" if workspace else "built-in skills"
        self.stdout.write(f"Synced {len(synced)} skill(s) into {where}: {created} new version(s).")
