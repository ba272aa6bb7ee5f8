"""POST /api/skills/sync: read skills/library into the built-in skills every workspace shares
(site administrators only: a workspace owner must not change what other tenants run)."""

from __future__ import annotations

import shutil

import pytest

from skills import api as skills_api
from skills.catalog import LIBRARY_DIR, load_library
from skills.models import Skill
from tests.api_helpers import api_client, error_of
from tests.factories import UserFactory


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A copy of the library the endpoint reads instead of the real one."""
    copy = tmp_path / "library"
    shutil.copytree(LIBRARY_DIR, copy)
    monkeypatch.setattr(skills_api, "LIBRARY_DIR", copy)
    monkeypatch.setattr(skills_api, "load_library", lambda: load_library(copy))
    return copy


def sync(client):
    return client.post("/api/skills/sync")


@pytest.fixture
def site_admin(db):
    return UserFactory.create(username="root", is_superuser=True)


def test_it_leaves_an_unchanged_library_alone(story, library, site_admin):
    response = sync(api_client(site_admin))

    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 0
    assert {s["slug"] for s in body["skills"]} == {p.name for p in library.iterdir()}


def test_it_saves_a_changed_skill_as_a_new_version(story, library, site_admin):
    prompt = library / "write-architecture" / "prompt.md"
    prompt.write_text(prompt.read_text() + "\nKeep it short.\n")
    before = Skill.objects.filter(workspace=None, slug="write-architecture").count()

    response = sync(api_client(site_admin))

    assert response.json()["created"] == 1
    changed = [s for s in response.json()["skills"] if s["created"]]
    assert [(s["slug"], s["version"]) for s in changed] == [("write-architecture", before + 1)]


def test_it_imports_nothing_when_one_file_is_malformed(story, library, site_admin):
    (library / "write-spec" / "SKILL.md").write_text("no title here\n")
    count = Skill.objects.count()

    response = sync(api_client(site_admin))

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "skill_format"
    assert error["message"].startswith("write-spec/SKILL.md:1: ")
    assert str(library) not in error["message"]  # no server paths in answers
    assert Skill.objects.count() == count


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer", "outsider"])
def test_it_refuses_everyone_but_site_administrators(story, library, who):
    (library / "write-spec" / "prompt.md").write_text("Changed by a tenant.\n")
    count = Skill.objects.count()

    response = sync(api_client(getattr(story, who)))

    assert response.status_code == 403
    assert "site administrators" in error_of(response)["message"]
    assert Skill.objects.count() == count


def test_it_asks_an_anonymous_caller_to_authenticate(story, library):
    assert sync(api_client()).status_code == 401
