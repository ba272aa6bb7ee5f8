"""/workspaces/new: anyone logged in creates a workspace from a template and owns it."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from features.models import Membership, Stage, Workspace
from features.stage_templates import TEMPLATES


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_it_creates_the_workspace_from_the_template(story, template):
    response = story.client_for(story.viewer).post(
        "/workspaces/new", {"name": "Payments team", "template": template}
    )

    assert response.status_code == 302
    workspace = Workspace.objects.get(name="Payments team")
    assert response["Location"] == f"/w/{workspace.slug}/"
    assert workspace.template == template
    keys = workspace.stages.filter(board=Stage.Board.FEATURE).order_by("position")
    assert [s.key for s in keys] == [s.key for s in TEMPLATES[template]]
    assert Membership.objects.get(workspace=workspace).user == story.viewer
    assert Membership.objects.get(workspace=workspace).role == "owner"
    entry = AuditEntry.objects.get(workspace=workspace)
    assert (entry.action, entry.actor) == ("workspace.create", story.viewer)
    assert entry.changes == {"template": template, "slug": workspace.slug}


def test_the_page_lists_every_template_with_its_stages(story):
    page = story.client_for(story.owner).get("/workspaces/new").content.decode()
    for key, specs in TEMPLATES.items():
        assert f'value="{key}"' in page
        assert " → ".join(s.name for s in specs) in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "template": "quick"}, "required"),
        ({"name": "x" * 121, "template": "quick"}, "at most 120"),
        ({"name": "Team", "template": "kanban"}, "valid choice"),
        ({"name": "!!!", "template": "quick"}, "letters or digits"),
        ({"name": "Alice's team", "template": "quick"}, "exists"),
    ],
)
def test_bad_input_is_422_with_the_reason_and_creates_nothing(story, data, message):
    before = Workspace.objects.count()
    response = story.client_for(story.owner).post("/workspaces/new", data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert Workspace.objects.count() == before


def test_it_needs_a_login(db, client):
    response = client.get("/workspaces/new")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
