"""Skill bundles: a skill's folder zipped with a manifest of every file's sha256.

Layout::

    manifest.json          {"format": "runway-skill-bundle", "slug", "version", "files": {...}}
    <slug>/SKILL.md
    <slug>/prompt.md

Import checks every checksum before it reads anything, so a bundle changed after export (or
damaged on the way) is refused whole. A damaged archive of any kind (bad CRC, corrupt
stream, unknown compression, encrypted entry, size fields that lie, a manifest nested too
deep, NUL bytes in a file) is a BundleError saying so, never a crash. An imported skill is a
workspace's own, starts as `community` and must be vetted by an admin before a fully automatic
recipe may use it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

from django.db import transaction

from config.jsonlimits import loads_limited
from features.models import Workspace
from skills.actions import definition_of
from skills.catalog import SkillDefinition, SkillFormatError, parse_skill_dir
from skills.models import Skill

FORMAT = "runway-skill-bundle"
MAX_BUNDLE_BYTES = 1_000_000
MAX_FILE_BYTES = 200_000
MAX_ENTRIES = 20
MANIFEST_MAX_DEPTH = 4
# What zipfile and zlib raise on a damaged or hostile archive: bad CRC and truncation
# (BadZipFile, EOFError), corrupt deflate data (zlib.error), an unknown compression method
# (NotImplementedError), an encrypted entry (RuntimeError), broken headers (struct.error,
# ValueError, OverflowError) and I/O on them (OSError).
_DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    OverflowError,
    struct.error,
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class BundleError(Exception):
    """A bundle that cannot be imported, with a message that says what is wrong with it."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def skill_md(skill: Skill) -> str:
    """SKILL.md for a stored skill, in the format skills.catalog parses back to the same skill."""
    definition = definition_of(skill)
    lines = [f"# {definition.name}", ""]
    if definition.description:
        lines += [" ".join(definition.description.split()), ""]
    if definition.inputs:
        lines.append("## Inputs")
        for name, spec in definition.inputs.items():
            required = "required" if spec["required"] else "optional"
            doc = f" - {spec['doc']}" if spec["doc"] else ""
            lines.append(f"- {name}: {spec['type']} ({required}){doc}")
        lines.append("")
    lines += ["## Outputs", f"- {definition.artifact_name}: {definition.output}", ""]
    if definition.sections:
        lines += ["## Sections", *(f"- {s}" for s in definition.sections), ""]
    if definition.tags:
        lines += ["## Tags", ", ".join(definition.tags), ""]
    return "\n".join(lines)


def export_bundle(skill: Skill) -> bytes:
    files = {
        "SKILL.md": skill_md(skill).encode(),
        "prompt.md": skill.prompt_template.encode(),
    }
    manifest = {
        "format": FORMAT,
        "slug": skill.slug,
        "version": skill.version,
        "name": skill.name,
        "files": {name: sha256(data) for name, data in files.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for name, data in files.items():
            archive.writestr(f"{skill.slug}/{name}", data)
    return buffer.getvalue()


def bundle_filename(skill: Skill) -> str:
    return f"{skill.slug}-v{skill.version}.zip"


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    """One file's bytes, read with a cap whatever its header claims."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise BundleError(f"The bundle has no {name}.") from None
    if info.file_size > MAX_FILE_BYTES:
        raise BundleError(f"{name} is larger than {MAX_FILE_BYTES // 1000} KB.")
    if info.flag_bits & 0x1:
        raise BundleError(f"{name} is encrypted: export the skill again without a password.")
    try:
        with archive.open(info) as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except _DAMAGED as exc:
        raise BundleError(f"{name} is damaged ({_reason(exc)}): export the skill again.") from None
    if len(data) > MAX_FILE_BYTES or len(data) != info.file_size:
        raise BundleError(f"{name} is not the size its header says: the bundle is damaged.")
    if b"\x00" in data:
        raise BundleError(f"{name} contains NUL bytes: a skill's files are text.")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NotImplementedError):
        return "an unsupported compression method"
    if isinstance(exc, zlib.error):
        return "corrupt compressed data"
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
        return "bad CRC"
    return "unreadable"


def read_bundle(data: bytes) -> SkillDefinition:
    """Check the manifest and every checksum, then parse the skill folder it holds."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"A bundle is at most {MAX_BUNDLE_BYTES // 1000} KB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED:
        raise BundleError("This is not a skill bundle: it is not a zip file.") from None
    with archive:
        if len(archive.infolist()) > MAX_ENTRIES:
            raise BundleError(f"A bundle holds at most {MAX_ENTRIES} files.")
        try:
            manifest = loads_limited(_read(archive, "manifest.json"), MANIFEST_MAX_DEPTH)
        except ValueError:
            raise BundleError(
                f"manifest.json is not valid JSON (nested at most {MANIFEST_MAX_DEPTH} levels)."
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BundleError(f'manifest.json does not say "format": "{FORMAT}".')
        slug, files = manifest.get("slug"), manifest.get("files")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise BundleError("manifest.json needs a lowercase slug (letters, digits, -, _).")
        if not isinstance(files, dict) or not {"SKILL.md", "prompt.md"} <= set(files):
            raise BundleError("manifest.json must list SKILL.md and prompt.md with checksums.")
        contents: dict[str, bytes] = {}
        for name, expected in files.items():
            if not isinstance(name, str) or not _FILE.match(name):
                raise BundleError(f"manifest.json lists an unsafe file name {name!r}.")
            content = _read(archive, f"{slug}/{name}")
            if sha256(content) != expected:
                raise BundleError(
                    f"Checksum mismatch for {slug}/{name}: the bundle was changed after it was "
                    "exported, or damaged. Export it again from its source."
                )
            contents[name] = content
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / slug
        folder.mkdir()
        for name in ("SKILL.md", "prompt.md"):
            (folder / name).write_bytes(contents[name])
        try:
            return parse_skill_dir(folder)
        except SkillFormatError as exc:
            reason = str(exc).removeprefix(f"{exc.path}:{exc.line}: ")
            raise BundleError(f"{slug}/{exc.path.name}:{exc.line}: {reason}") from None
        except UnicodeDecodeError:
            raise BundleError("SKILL.md and prompt.md must be UTF-8 text.") from None


def import_bundle(data: bytes, workspace: Workspace) -> tuple[Skill, bool]:
    """Store the bundle's skill as the workspace's own: (skill, created). Same content twice
    imports nothing; new content is a new version, which starts as community again."""
    definition = read_bundle(data)
    with transaction.atomic():
        latest = (
            Skill.objects.select_for_update()
            .filter(workspace=workspace, slug=definition.slug)
            .order_by("-version")
            .first()
        )
        if latest is not None and latest.checksum == definition.checksum:
            return latest, False
        skill = Skill.objects.create(
            workspace=workspace,
            slug=definition.slug,
            version=1 if latest is None else latest.version + 1,
            name=definition.name,
            description=definition.description,
            source=Skill.Source.IMPORTED,
            trust=Skill.Trust.COMMUNITY,
            output=definition.output,
            artifact_name=definition.artifact_name,
            prompt_template=definition.prompt_template,
            input_schema=definition.input_schema,
            output_schema=definition.output_schema,
            tags=definition.tags,
            checksum=definition.checksum,
        )
    return skill, True
