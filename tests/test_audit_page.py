"""/w/<slug>/audit/: owners and admins read the log with filters kept in the URL, page by
page, and export it as CSV with the same filters; cells never run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from audit.log import Target, record
from audit.models import AuditEntry
from features.models import Membership, Workspace
from features.views.audit_log import PAGE_SIZE
from tests.factories import UserFactory


def url(story, **query) -> str:
    from urllib.parse import urlencode

    return f"/w/{story.workspace.slug}/audit/" + (f"?{urlencode(query)}" if query else "")


def csv_url(story, **query) -> str:
    return url(story, **query).replace("/audit/", "/audit.csv")


def log(story, actor, action, label="Checkout page", target_id=1, **changes) -> AuditEntry:
    return record(
        workspace=story.workspace,
        actor=actor,
        action=action,
        target=Target("feature", target_id, label),
        changes=changes,
    )


def days_ago(days: int):
    """Write entries as if `days` ago: the clock auto_now_add reads is moved, not the rows
    (the log is append-only)."""
    return mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() - timedelta(days=days)
    )


def rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def entries(story):
    launch = log(story, story.teammate, "run.launch", stage="architecture")
    move = log(story, story.owner, "card.move", label="Search box", target_id=2)
    with days_ago(10):
        old = log(story, story.owner, "budget.change", label="Alice's team", target_id=9)
    other = Workspace.objects.get(slug="charlies-team")
    record(workspace=other, actor=story.outsider, action="run.launch")
    return launch, move, old


def shown(response) -> list[int]:
    return [entry.pk for entry in response.context["page"]]


def test_owners_and_admins_see_the_log_newest_first(story, entries):
    launch, move, old = entries
    response = story.client_for(story.owner).get(url(story))
    assert response.status_code == 200
    assert shown(response) == [move.pk, launch.pk, old.pk]  # another workspace's is not here
    page = response.content.decode()
    assert "run.launch" in page
    assert "Export CSV" in page


@pytest.mark.parametrize(("who", "status"), [("teammate", 403), ("viewer", 403), ("outsider", 404)])
def test_others_are_refused(story, entries, who, status):
    client = story.client_for(getattr(story, who))
    assert client.get(url(story)).status_code == status
    assert client.get(csv_url(story)).status_code == status


def test_an_admin_may_read_it(story, entries):
    Membership.objects.filter(user=story.teammate).update(role="admin")
    assert story.client_for(story.teammate).get(url(story)).status_code == 200


def test_filters_by_action_actor_target_and_dates(story, entries):
    launch, move, old = entries
    client = story.client_for(story.owner)
    assert shown(client.get(url(story, action="card.move"))) == [move.pk]
    assert shown(client.get(url(story, actor="bob"))) == [launch.pk]
    assert shown(client.get(url(story, target="search"))) == [move.pk]
    assert shown(client.get(url(story, target="#9"))) == [old.pk]
    today = timezone.localdate()
    assert shown(client.get(url(story, since=today.isoformat()))) == [move.pk, launch.pk]
    until = (today - timedelta(days=5)).isoformat()
    assert shown(client.get(url(story, until=until))) == [old.pk]
    assert shown(client.get(url(story, actor="alice", since=today.isoformat()))) == [move.pk]


def test_the_filters_stay_in_the_export_link_and_the_form(story, entries):
    page = story.client_for(story.owner).get(url(story, action="card.move")).content.decode()
    assert "/audit.csv?action=card.move" in page
    assert '<option value="card.move" selected>' in page


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"since": "2026-02-30"},
        {"since": "2026-05-02", "until": "2026-05-01"},
        {"page": "0"},
        {"page": "x"},
        {"action": "a" * 41},
    ],
)
def test_bad_filters_are_400_with_the_reason(story, entries, query):
    client = story.client_for(story.owner)
    response = client.get(url(story, **query))
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    exported = client.get(csv_url(story, **query))
    assert exported.status_code == 400
    assert exported.content.decode().startswith("Bad filter:")


def test_it_pages_through_the_log_keeping_the_filters(story):
    for n in range(PAGE_SIZE + 3):
        log(story, story.owner, "card.move", target_id=n)
    client = story.client_for(story.owner)
    first = client.get(url(story, action="card.move"))
    assert len(first.context["page"]) == PAGE_SIZE
    page = first.content.decode()
    assert "Page 1 of 2" in page
    assert "?action=card.move&amp;page=2" in page
    second = client.get(url(story, action="card.move", page=2))
    assert len(second.context["page"]) == 3
    beyond = client.get(url(story, action="card.move", page=9))
    assert beyond.status_code == 200  # past the end shows the last page
    assert len(beyond.context["page"]) == 3


def test_the_csv_export_streams_the_filtered_entries(story, entries):
    launch, _, _ = entries
    response = story.client_for(story.owner).get(csv_url(story, actor="bob"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-alices-team-')
    header, *data = rows(response)
    assert header == [
        "time",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target",
        "changes",
        "source",
    ]
    assert data == [
        [
            launch.created_at.isoformat(),
            "bob",
            "run.launch",
            "feature",
            "1",
            "Checkout page",
            '{"stage": "architecture"}',
            "web",
        ]
    ]


@pytest.mark.parametrize(
    "evil",
    ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"],
)
def test_csv_cells_never_start_a_formula(story, evil):
    mallory = UserFactory.create(username="mallory")
    Membership.objects.create(workspace=story.workspace, user=mallory, role="member")
    record(
        workspace=story.workspace,
        actor=mallory,
        action="card.move",
        target=Target("feature", 1, evil),
        actor_label=evil,
    )
    response = story.client_for(story.owner).get(csv_url(story))
    (_, row) = rows(response)
    assert row[1] == "'" + evil
    assert row[5] == "'" + evil


def test_the_page_escapes_what_people_typed(story):
    log(story, story.owner, "card.move", label="<script>alert(1)</script>", note="<b>x</b>")
    page = story.client_for(story.owner).get(url(story)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "<b>x</b>" not in page


def test_long_changes_are_shortened_on_the_page_but_whole_in_the_export(story):
    prompt = "Write the architecture. " * 100
    log(story, story.owner, "recipe.change", prompt={"before": "", "after": prompt})
    client = story.client_for(story.owner)
    page = client.get(url(story)).content.decode()
    assert prompt not in page
    assert "Write the architecture." in page
    (_, row) = rows(client.get(csv_url(story)))
    assert prompt.strip() in row[6]
