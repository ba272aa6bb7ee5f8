"""Batches in the admin: listed with their progress, read-only, stopped and retried through
the engine."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from pipeline import engine
from pipeline.models import Batch, Run
from tests.admin_helpers import admin_url
from tests.conftest import Story
from tests.tree_helpers import epic_with_stories

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "password"))
    return client


@pytest.fixture
def batch(product_story: Story, eager: Any, no_enqueue: Any) -> Batch:
    parent = epic_with_stories(product_story, eager)
    with no_enqueue():
        return engine.generate_subtasks(parent, product_story.owner).batch


def test_it_lists_and_shows_batches_with_their_progress(console: Client, batch: Batch) -> None:
    listed = console.get(admin_url(Batch, "changelist")).content.decode()
    shown = console.get(admin_url(Batch, "change", batch.pk))

    assert "0 of 6 done" in listed
    assert shown.status_code == 200
    assert console.get(admin_url(Batch, "add")).status_code == 403


def test_it_stops_and_retries_a_batch_through_the_engine(
    console: Client, batch: Batch, no_enqueue: Any
) -> None:
    url = admin_url(Batch, "changelist")
    with no_enqueue():
        console.post(url, {"action": "stop_batches", "_selected_action": [batch.pk]})
        assert Run.objects.filter(batch=batch, status=Run.Status.CANCELLED).count() == 6
        console.post(url, {"action": "retry_batches", "_selected_action": [batch.pk]})

    assert Run.objects.filter(batch=batch, status=Run.Status.QUEUED).count() == 6
    batch.refresh_from_db()
    assert (batch.finished_at, batch.stopped_at) == (None, None)
