"""Vetting a skill: an owner's or admin's decision, recorded with who and when."""

from __future__ import annotations

import pytest

from skills.actions import do_vet_skill
from skills.catalog import latest_skill
from skills.models import Skill
from tests.factories import UserFactory
from tests.skill_helpers import own_skill


def test_it_records_who_vetted_and_when(story):
    skill = do_vet_skill(own_skill(story.workspace), story.owner)

    skill.refresh_from_db()
    assert (skill.trust, skill.vetted_by) == ("vetted", story.owner)
    assert skill.vetted_at is not None


def test_an_owner_vets_from_the_catalog_page(story):
    skill = own_skill(story.workspace)

    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/skills/{skill.pk}/vet"
    )

    assert response.status_code == 302
    skill.refresh_from_db()
    assert (skill.trust, skill.vetted_by) == ("vetted", story.owner)


@pytest.mark.parametrize(("who", "status"), [("teammate", 403), ("viewer", 403), ("outsider", 404)])
def test_others_cannot_vet(story, who, status):
    skill = own_skill(story.workspace)

    response = story.client_for(getattr(story, who)).post(
        f"/w/{story.workspace.slug}/skills/{skill.pk}/vet"
    )

    assert response.status_code == status
    assert Skill.objects.get(pk=skill.pk).trust == "community"


def test_a_workspace_owner_cannot_vet_a_built_in_skill(story):
    builtin = latest_skill("write-spec")
    Skill.objects.filter(pk=builtin.pk).update(trust="community")

    response = story.client_for(story.owner).post(
        f"/w/{story.workspace.slug}/skills/{builtin.pk}/vet"
    )

    assert response.status_code == 403


def test_the_admin_action_vets_and_records_the_operator(story):
    staff = UserFactory.create(username="ops", is_staff=True, is_superuser=True)
    skill = own_skill(story.workspace)
    client = story.client_for(staff)

    response = client.post(
        "/admin/skills/skill/",
        {"action": "vet_skills", "_selected_action": [skill.pk]},
    )

    assert response.status_code == 302
    skill.refresh_from_db()
    assert (skill.trust, skill.vetted_by) == ("vetted", staff)


def test_the_admin_action_exports_one_skill_as_a_bundle(story):
    staff = UserFactory.create(username="ops", is_staff=True, is_superuser=True)
    skill = own_skill(story.workspace)

    response = story.client_for(staff).post(
        "/admin/skills/skill/",
        {"action": "export_bundle", "_selected_action": [skill.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
