"""Provider slots: a counting semaphore in Redis whose leases free themselves."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings

from pipeline import limits
from pipeline.providers.base import StepCancelled


@pytest.fixture(autouse=True)
def clean_slots() -> None:
    client = limits._redis(settings.REDIS_URL)
    for key in client.scan_iter(f"{limits.KEY_PREFIX}:*"):
        client.delete(key)


def test_it_holds_at_most_the_limit_and_frees_a_slot_on_exit():
    with limits.provider_slot("anthropic", 1, limit=2, wait_seconds=0):
        with limits.provider_slot("anthropic", 1, limit=2, wait_seconds=0):
            assert limits.in_use("anthropic", 1) == 2
            with (
                pytest.raises(limits.NoSlot, match="2 calls of this workspace are in flight"),
                limits.provider_slot("anthropic", 1, limit=2, wait_seconds=0),
            ):
                pass
        assert limits.in_use("anthropic", 1) == 1
    assert limits.in_use("anthropic", 1) == 0


def test_workspaces_and_providers_have_separate_slots():
    with (
        limits.provider_slot("anthropic", 1, limit=1, wait_seconds=0),
        limits.provider_slot("anthropic", 2, limit=1, wait_seconds=0),
        limits.provider_slot("openai", 1, limit=1, wait_seconds=0),
    ):
        assert limits.in_use("anthropic", 1) == 1


def test_a_waiter_gets_the_slot_when_it_frees_and_is_told_once_that_it_waits():
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with limits.provider_slot("anthropic", 1, limit=1, wait_seconds=0):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    told: list[tuple[int, int]] = []
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with limits.provider_slot(
        "anthropic", 1, limit=1, wait_seconds=10, on_wait=lambda h, n: told.append((h, n))
    ):
        assert limits.in_use("anthropic", 1) == 1
    thread.join(10)
    assert told == [(1, 1)]


def test_a_dead_holders_lease_expires_and_frees_its_slot():
    # A SIGKILLed worker never releases: simulate it with a lease that is never renewed.
    client = limits._redis(settings.REDIS_URL)
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    client.zadd(limits.slot_key("anthropic", 1), {"dead-worker": now_ms + 300})
    assert limits.in_use("anthropic", 1) == 1
    started = time.monotonic()
    with limits.provider_slot("anthropic", 1, limit=1, wait_seconds=10):
        waited = time.monotonic() - started
    assert waited < 5


def test_a_live_holder_keeps_its_slot_past_one_lease():
    with limits.provider_slot("anthropic", 1, limit=1, wait_seconds=0, lease_seconds=1):
        deadline = time.monotonic() + 2.5
        # Renewals every third of a lease keep it alive for longer than the lease.
        while time.monotonic() < deadline:
            assert limits.in_use("anthropic", 1) == 1
            threading.Event().wait(0.2)
    assert limits.in_use("anthropic", 1) == 0


def test_stop_interrupts_the_wait():
    cancelled = threading.Event()
    with limits.provider_slot("anthropic", 1, limit=1, wait_seconds=0):
        threading.Timer(0.2, cancelled.set).start()
        with (
            pytest.raises(StepCancelled),
            limits.provider_slot("anthropic", 1, limit=1, wait_seconds=30, cancelled=cancelled),
        ):
            pass


def test_a_limit_of_zero_means_no_limit():
    with limits.provider_slot("anthropic", 1, limit=0, wait_seconds=0):
        assert limits.in_use("anthropic", 1) == 0
