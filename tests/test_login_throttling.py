"""Login throttling (django-axes): per username and per client address, a temporary lock after
the limit, every failure logged. The right password during the lock does not get in."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import Story

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture(autouse=True)
def _limit(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = LIMIT


def log_in(username: str, password: str, address: str = "203.0.113.7") -> Any:
    return Client(REMOTE_ADDR=address).post(
        reverse("login"), {"username": username, "password": password}
    )


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def test_the_right_password_after_the_limit_of_wrong_ones_is_refused(story: Story) -> None:
    for _ in range(LIMIT - 1):
        assert log_in("alice", "wrong").status_code == 200  # the form again, with its error
    assert log_in("alice", "wrong").status_code == 429  # the limit-th failure locks

    locked = log_in("alice", "password")

    assert locked.status_code == 429
    assert not logged_in(locked)
    assert "Too many failed logins" in locked.content.decode()


def test_a_username_is_locked_whatever_address_the_guesses_come_from(story: Story) -> None:
    for i in range(LIMIT):
        log_in("alice", "wrong", address=f"198.51.100.{i}")

    assert log_in("alice", "password", address="192.0.2.99").status_code == 429
    # Another account from a fresh address is not affected.
    assert logged_in(log_in("bob", "password", address="192.0.2.99"))


def test_an_address_is_locked_whatever_usernames_it_guesses(story: Story) -> None:
    for name in ("alice", "bob", "vera", "charlie", "nobody"):
        log_in(name, "wrong", address="203.0.113.50")

    assert log_in("bob", "password", address="203.0.113.50").status_code == 429
    assert logged_in(log_in("bob", "password", address="203.0.113.51"))


def test_every_failure_is_logged(story: Story, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="axes"):
        log_in("alice", "wrong")
        log_in("alice", "wrong again")

    failures = [r for r in caplog.records if "failure" in r.getMessage().lower()]
    assert len(failures) >= 2
    assert "alice" in failures[-1].getMessage()
    assert AccessFailureLog.objects.filter(username="alice").count() == 2
    assert (
        AccessAttempt.objects.get(username="alice", ip_address="203.0.113.7").failures_since_start
        == 2
    )


def test_the_lock_ends_after_the_cool_off(story: Story, settings: Any) -> None:
    for _ in range(LIMIT):
        log_in("alice", "wrong")
    assert log_in("alice", "password").status_code == 429

    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)

    assert logged_in(log_in("alice", "password"))


def test_a_success_before_the_limit_starts_the_count_again(story: Story) -> None:
    for _ in range(LIMIT - 1):
        log_in("alice", "wrong")
    assert logged_in(log_in("alice", "password"))
    for _ in range(LIMIT - 1):
        log_in("alice", "wrong")

    assert logged_in(log_in("alice", "password"))


def test_an_overlong_username_is_a_wrong_login_not_a_crash(story: Story) -> None:
    response = log_in("u" * 6000, "password")

    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
