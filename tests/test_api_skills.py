"""GET /api/skills and /api/skills/{id}: built-in skills for everyone, a workspace's own for its
members."""

from __future__ import annotations

import pytest

from skills.models import Skill
from tests.api_helpers import api_client, error_of
from tests.skill_helpers import own_skill


@pytest.fixture
def skill(story):
    return own_skill(story.workspace)


def slugs(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [s["slug"] for s in response.json()]


@pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
def test_it_lists_built_in_and_workspace_skills(story, skill, who):
    listed = slugs(api_client(getattr(story, who)).get("/api/skills"))

    assert "summarise" in listed
    assert {"write-architecture", "generate-tasks"} <= set(listed)
    assert len(listed) == len(set(listed))  # latest versions only


def test_it_keeps_a_workspaces_skills_from_outsiders(story, skill):
    client = api_client(story.outsider)

    assert "summarise" not in slugs(client.get("/api/skills"))
    assert client.get(f"/api/skills/{skill.pk}").status_code == 404
    assert error_of(client.get("/api/skills?workspace=alices-team"))["code"] == "not_found"


def test_it_lists_every_version_on_request(story, skill):
    Skill.objects.create(
        workspace=story.workspace, slug="summarise", version=2, name="Summarise", trust="community"
    )

    versions = [
        (s["version"], s["latest"])
        for s in api_client(story.owner).get("/api/skills?all_versions=true").json()
        if s["slug"] == "summarise"
    ]

    assert versions == [(2, True), (1, False)]


def test_it_shows_one_skill_with_its_prompt(story, skill):
    response = api_client(story.viewer).get(f"/api/skills/{skill.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["slug"], body["workspace"], body["trust"], body["latest"]) == (
        "summarise",
        "alices-team",
        "community",
        True,
    )
    assert body["prompt_template"] == "Summarise {{title}}."
    assert body["input_schema"]["required"] == ["title"]


def test_it_shows_a_built_in_skill_to_anyone_logged_in(story):
    builtin = Skill.objects.filter(workspace=None, slug="write-architecture").latest("version")

    response = api_client(story.outsider).get(f"/api/skills/{builtin.pk}")

    assert response.status_code == 200
    assert (response.json()["workspace"], response.json()["trust"]) == (None, "vetted")


def test_it_asks_an_anonymous_caller_to_authenticate(story, skill):
    assert api_client().get("/api/skills").status_code == 401
    assert api_client().get(f"/api/skills/{skill.pk}").status_code == 401
