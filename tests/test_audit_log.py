"""audit.log.record writes one entry; the log cannot be changed or deleted, in the ORM or in SQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.log import Target, changed, record
from audit.models import AuditEntry, AuditLogIsAppendOnly
from features.models import Workspace


def _entry(story) -> AuditEntry:
    return record(
        workspace=story.workspace,
        actor=story.owner,
        action="budget.change",
        target=story.workspace,
        changes={"monthly_budget_usd": {"before": None, "after": Decimal("12.50")}},
    )


def test_record_stores_who_what_and_the_change(story):
    entry = _entry(story)

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.actor == story.owner
    assert stored.actor_label == "alice"
    assert stored.action == "budget.change"
    assert (stored.target_type, stored.target_id) == ("workspace", str(story.workspace.pk))
    assert stored.target_label == "Alice's team"
    assert stored.changes == {"monthly_budget_usd": {"before": None, "after": "12.50"}}
    assert stored.source == "web"
    assert stored.created_at is not None


def test_record_takes_an_explicit_target_and_the_system_as_actor(story):
    entry = record(
        workspace=story.workspace,
        actor=AnonymousUser(),
        action="run.stop",
        target=Target("run", 42, "Run 42"),
        source="admin",
    )

    assert entry.actor is None
    assert entry.actor_label == "system"
    assert (entry.target_type, entry.target_id, entry.target_label) == ("run", "42", "Run 42")
    assert entry.changes == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "Launch"}, "dotted slug"),
        ({"action": "run.launch", "source": "fax"}, "source"),
        ({"action": "run.launch", "changes": ["x"]}, "mapping"),
    ],
)
def test_record_refuses_malformed_calls(story, kwargs, message):
    with pytest.raises(ValueError, match=message):
        record(workspace=story.workspace, actor=story.owner, **kwargs)
    assert not AuditEntry.objects.exists()


def test_changed_lists_only_fields_that_differ():
    assert changed({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {
        "b": {"before": 2, "after": 3},
        "c": {"before": None, "after": 4},
    }
    assert changed({"a": 1}, {"a": 2}, fields=["b"]) == {}


def test_a_stored_entry_cannot_be_saved_again(story):
    entry = _entry(story)
    entry.action = "run.launch"

    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    assert AuditEntry.objects.get(pk=entry.pk).action == "budget.change"


def test_an_entry_cannot_be_deleted(story):
    entry = _entry(story)

    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_queryset_cannot_update_entries(story):
    entry = _entry(story)

    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="run.launch")
    assert AuditEntry.objects.get(pk=entry.pk).action == "budget.change"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL trigger is PostgreSQL's")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET action = 'run.launch' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ],
)
def test_the_database_refuses_changes_made_in_sql(story, sql):
    entry = _entry(story)

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).action == "budget.change"


def test_deleting_a_user_keeps_their_entries_under_their_name(story):
    entry = record(workspace=story.workspace, actor=story.teammate, action="card.move")

    story.teammate.delete()

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.actor is None
    assert stored.actor_label == "bob"


def test_deleting_a_workspace_takes_its_log_with_it(story):
    _entry(story)
    other = Workspace.objects.get(slug="charlies-team")
    record(workspace=other, actor=story.outsider, action="card.move")

    story.workspace.delete()

    assert list(AuditEntry.objects.values_list("workspace__slug", flat=True)) == ["charlies-team"]
