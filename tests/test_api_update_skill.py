"""PATCH /api/skills/{id}: vet a skill, or give it a new prompt (a new version). Admins only."""

from __future__ import annotations

import pytest

from features.models import Membership
from skills.catalog import latest_skill
from skills.models import Skill
from tests.api_helpers import api_client, error_of
from tests.factories import UserFactory
from tests.skill_helpers import own_skill


@pytest.fixture
def skill(story):
    return own_skill(story.workspace)


def patch(client, skill, **body):
    return client.patch(f"/api/skills/{skill.pk}", body, content_type="application/json")


def test_it_lets_the_owner_vet_a_skill(story, skill):
    response = patch(api_client(story.owner), skill, trust="vetted")

    assert response.status_code == 200
    assert (response.json()["trust"], response.json()["vetted_by"]) == ("vetted", "alice")
    skill.refresh_from_db()
    assert (skill.trust, skill.vetted_by, skill.version) == ("vetted", story.owner, 1)
    assert skill.vetted_at is not None


def test_it_saves_a_new_prompt_as_a_new_version(story, skill):
    Membership.objects.filter(user=story.teammate).update(role=Membership.Role.ADMIN)

    response = patch(api_client(story.teammate), skill, prompt="Summarise {{ title }} briefly.")

    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["latest"], body["trust"]) == (2, True, "community")
    assert body["prompt_template"] == "Summarise {{ title }} briefly."
    assert latest_skill("summarise", story.workspace).pk == body["id"]
    skill.refresh_from_db()
    assert skill.prompt_template == "Summarise {{title}}."  # past runs keep their version


def test_it_refuses_a_prompt_with_an_undeclared_placeholder(story, skill):
    response = patch(api_client(story.owner), skill, prompt="Use {{secret}}")

    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "prompt"
    assert "secret" in error["message"]
    assert Skill.objects.filter(slug="summarise").count() == 1


@pytest.mark.parametrize("who", ["teammate", "viewer"])
def test_it_refuses_members_who_are_not_admins(story, skill, who):
    response = patch(api_client(getattr(story, who)), skill, trust="vetted")

    assert response.status_code == 403
    assert Skill.objects.get(pk=skill.pk).trust == "community"


def test_it_hides_a_workspace_skill_from_an_outsider(story, skill):
    assert patch(api_client(story.outsider), skill, trust="vetted").status_code == 404


def test_it_asks_an_anonymous_caller_to_authenticate(story, skill):
    assert patch(api_client(), skill, trust="vetted").status_code == 401


def test_it_keeps_built_in_skills_for_site_administrators(story):
    builtin = latest_skill("write-architecture")

    refused = patch(api_client(story.owner), builtin, trust="experimental")
    allowed = patch(api_client(UserFactory.create(is_superuser=True)), builtin, trust="community")

    assert refused.status_code == 403
    assert "site administrator" in error_of(refused)["message"]
    assert allowed.status_code == 200
    assert Skill.objects.get(pk=builtin.pk).trust == "community"


def test_it_refuses_an_unknown_trust_level(story, skill):
    response = patch(api_client(story.owner), skill, trust="blessed")

    assert response.status_code == 422
    assert error_of(response)["field"] == "trust"
