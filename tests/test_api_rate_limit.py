"""Launches are limited per user per minute, counted in Redis so every web process shares it."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings

from features.api.base import launch_rate_key
from pipeline.models import Run
from tests.api_helpers import api_client, error_of, reset_launch_limits
from tests.engine_helpers import card


@pytest.fixture(autouse=True)
def _limit_of_two(settings):
    settings.RUNWAY_API_LAUNCHES_PER_MINUTE = 2
    reset_launch_limits()
    yield
    reset_launch_limits()


def launch(client, feature):
    return client.post(f"/api/features/{feature.pk}/launch")


def test_it_answers_429_with_retry_after_past_the_limit(story, no_enqueue):
    client = api_client(story.owner)
    first, second, third = (card(story.workspace, f"Card {i}") for i in range(3))

    with no_enqueue():
        assert launch(client, first).status_code == 201
        assert launch(client, second).status_code == 201
        response = launch(client, third)

    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not Run.objects.filter(feature=third).exists()


def test_it_counts_create_with_launch_and_retries_as_launches(story, no_enqueue):
    client = api_client(story.owner)
    body = {"workspace": "alices-team", "title": "Launch me", "launch": True}

    with no_enqueue():
        assert (
            client.post("/api/features", body, content_type="application/json").status_code == 201
        )
        assert launch(client, card(story.workspace)).status_code == 201
        response = client.post("/api/features", body, content_type="application/json")

    assert response.status_code == 429
    assert "Retry-After" in response


def test_it_counts_each_user_separately(story, no_enqueue):
    with no_enqueue():
        for i in range(2):
            launch(api_client(story.owner), card(story.workspace, f"Alice {i}"))

        response = launch(api_client(story.teammate), card(story.workspace, "Bob's"))

    assert response.status_code == 201


def test_it_shares_the_count_with_other_processes_through_redis(story, no_enqueue):
    # Another web process counting two launches is two writes to the same Redis key.
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        client.set(launch_rate_key(story.owner.pk), 2, ex=60)
    finally:
        client.close()

    response = launch(api_client(story.owner), card(story.workspace))

    assert response.status_code == 429


def test_it_does_not_count_reads_or_edits(story, no_enqueue):
    client = api_client(story.owner)
    feature = card(story.workspace)
    for _ in range(5):
        client.get(f"/api/features/{feature.pk}")

    with no_enqueue():
        assert launch(client, feature).status_code == 201
