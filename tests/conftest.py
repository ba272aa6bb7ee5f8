"""Every workspace fixture tells the same story: an owner, a teammate and an outsider."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from config.redis_urls import for_redis_py
from features.models import Membership, Workspace
from tests.factories import UserFactory, WorkspaceFactory, add_member


@dataclass
class Story:
    workspace: Workspace
    owner: User
    teammate: User
    viewer: User
    outsider: User

    def client_for(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client


def make_story(template: str = "quick") -> Story:
    owner = UserFactory.create(username="alice")
    teammate = UserFactory.create(username="bob")
    viewer = UserFactory.create(username="vera")
    outsider = UserFactory.create(username="charlie")
    workspace = WorkspaceFactory.create(
        name="Alice's team", slug="alices-team", template=template, owner=owner
    )
    add_member(workspace, teammate, Membership.Role.MEMBER)
    add_member(workspace, viewer, Membership.Role.VIEWER)
    # The outsider has a workspace of their own, so "not found" is about access, not emptiness.
    WorkspaceFactory.create(
        name="Charlie's team", slug="charlies-team", template=template, owner=outsider
    )
    return Story(workspace, owner, teammate, viewer, outsider)


@pytest.fixture
def story(db: None) -> Story:
    return make_story()


@pytest.fixture
def delivery_story(db: None) -> Story:
    return make_story("delivery")


@pytest.fixture
def product_story(db: None) -> Story:
    return make_story("product")


@pytest.fixture
def eager(settings, django_capture_on_commit_callbacks):
    """Run Celery tasks inline when their on_commit enqueue fires: the whole chain, in-process.

    Nothing is mocked: the same engine, executor and offline provider run, only without a broker.
    Use `with eager() as callbacks:` around the call that starts work.
    """
    from config.celery import app

    settings.RUNWAY_OFFLINE_DELAY_SECONDS = 0
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """The broker's Redis, its run queue emptied first: messages left by earlier tests point
    at rows that no longer exist (and count as a backlog to the dispatch sweep)."""
    client = redis.Redis.from_url(for_redis_py(settings.REDIS_URL))
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The defaults the CLI reads from the environment must not leak in from the shell.
    monkeypatch.delenv("RUNWAY_WORKSPACE", raising=False)
    monkeypatch.delenv("RUNWAY_CLI_USER", raising=False)


@pytest.fixture
def no_enqueue(django_capture_on_commit_callbacks):
    """Record on_commit callbacks (enqueues, events) without running them."""
    return lambda: django_capture_on_commit_callbacks(execute=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright keeps an event loop in the main thread for the rest of
    the session, which async_to_sync in the websocket tests cannot share."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
