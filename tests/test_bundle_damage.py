"""Damaged skill bundles: every kind of damage is a clear refusal (BundleError, a 422 on the
catalog page), never a crash, and nothing is imported."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from skills.bundles import BundleError, export_bundle, read_bundle
from skills.catalog import latest_skill
from skills.models import Skill

pytestmark = pytest.mark.django_db


def stored(files: dict[str, bytes], manifest: bytes | None = None) -> bytes:
    """A bundle with these files (uncompressed, so tests can damage bytes precisely)."""
    out = io.BytesIO()
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    manifest = (
        manifest
        or json.dumps(
            {"format": "runway-skill-bundle", "slug": "demo", "version": 1, "files": digest}
        ).encode()
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.json", manifest)
        for name, data in files.items():
            archive.writestr(f"demo/{name}", data)
    return out.getvalue()


def good_files() -> dict[str, bytes]:
    source = zipfile.ZipFile(io.BytesIO(export_bundle(latest_skill("write-architecture"))))
    slug = "write-architecture"
    return {name: source.read(f"{slug}/{name}") for name in ("SKILL.md", "prompt.md")}


def _headers(bundle: bytes, name: str) -> tuple[int, int]:
    """Offsets of the member's local header and central directory entry."""
    info = zipfile.ZipFile(io.BytesIO(bundle)).getinfo(name)
    central = bundle.find(b"PK\x01\x02")
    while bundle[central + 46 : central + 46 + len(name)] != name.encode():
        central = bundle.find(b"PK\x01\x02", central + 4)
        assert central != -1
    return info.header_offset, central


def _patch(bundle: bytes, offset: int, value: bytes) -> bytes:
    return bundle[:offset] + value + bundle[offset + len(value) :]


def bad_crc() -> bytes:
    bundle = stored(good_files())
    info = zipfile.ZipFile(io.BytesIO(bundle)).getinfo("demo/prompt.md")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    return _patch(bundle, start, bytes([bundle[start] ^ 0xFF]))


def corrupt_stream() -> bytes:
    out = io.BytesIO()
    files = good_files()
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    manifest = {"format": "runway-skill-bundle", "slug": "demo", "version": 1, "files": digest}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            archive.writestr(f"demo/{name}", data)
    bundle = out.getvalue()
    info = zipfile.ZipFile(io.BytesIO(bundle)).getinfo("demo/prompt.md")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    return _patch(bundle, start, b"\xff" * min(info.compress_size, 16))


def unknown_compression() -> bytes:
    bundle = stored(good_files())
    local, central = _headers(bundle, "demo/prompt.md")
    bundle = _patch(bundle, local + 8, struct.pack("<H", 99))
    return _patch(bundle, central + 10, struct.pack("<H", 99))


def encrypted_entry() -> bytes:
    bundle = stored(good_files())
    local, central = _headers(bundle, "demo/prompt.md")
    bundle = _patch(bundle, local + 6, struct.pack("<H", 0x1))
    return _patch(bundle, central + 8, struct.pack("<H", 0x1))


def lying_size() -> bytes:
    bundle = stored(good_files())
    _, central = _headers(bundle, "demo/prompt.md")
    return _patch(bundle, central + 24, struct.pack("<I", 3))  # "3 bytes", says the header


def nested_manifest() -> bytes:
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    return stored(good_files(), manifest=deep.encode())


def nul_in_a_file() -> bytes:
    files = good_files()
    files["prompt.md"] = b"Write it.\x00 Then stop.\n"
    return stored(files)


def truncated() -> bytes:
    bundle = stored(good_files())
    return bundle[: len(bundle) // 2]


DAMAGE: dict[str, tuple[Callable[[], bytes], str]] = {
    "bad CRC": (bad_crc, "bad CRC"),
    "corrupt stream": (corrupt_stream, "damaged"),
    "unknown compression": (unknown_compression, "unsupported compression"),
    "encrypted entry": (encrypted_entry, "encrypted"),
    "lying size field": (lying_size, "damaged"),
    "deeply nested manifest": (nested_manifest, "nested at most"),
    "NUL in a file": (nul_in_a_file, "NUL bytes"),
    "truncated archive": (truncated, "not a zip file"),
}


def test_an_undamaged_stored_bundle_reads(story) -> None:
    assert read_bundle(stored(good_files())).slug == "demo"


@pytest.mark.parametrize("kind", DAMAGE)
def test_each_kind_of_damage_is_refused_with_a_reason(story, kind: str) -> None:
    build, reason = DAMAGE[kind]

    with pytest.raises(BundleError, match=reason):
        read_bundle(build())


@pytest.mark.parametrize("kind", DAMAGE)
def test_the_catalog_page_answers_422_and_imports_nothing(story, kind: str) -> None:
    build, reason = DAMAGE[kind]
    client = story.client_for(story.owner)
    before = Skill.objects.count()

    response = client.post(
        reverse("skills:import", args=[story.workspace.slug]),
        {"bundle": SimpleUploadedFile("demo.zip", build(), content_type="application/zip")},
    )

    assert response.status_code == 422
    assert reason in response.content.decode()
    assert Skill.objects.count() == before
