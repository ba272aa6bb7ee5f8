"""The provider concurrency cap holds across worker processes: two workers, four pool processes,
and never more than RUNWAY_PROVIDER_CONCURRENCY calls in flight at the (local) Claude server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from features.models import Workspace
from pipeline import engine
from pipeline.models import Run, RunLog
from tests import fake_llm
from tests.engine_helpers import card
from tests.fake_llm import FakeLLM
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    yield from fake_llm.serve(monkeypatch)


def test_two_workers_never_exceed_the_provider_cap(story, stack, fake):
    fake.hold_seconds = 0.4  # each call takes a while, so calls would overlap without the cap
    fake_llm.use_provider(story.workspace, "anthropic", "claude-test")
    Workspace.objects.filter(pk=story.workspace.pk).update(max_concurrent_runs=10)
    stack.env.update(
        {
            "ANTHROPIC_API_KEY": "sk-test-key",
            "ANTHROPIC_BASE_URL": fake.url,
            "RUNWAY_PROVIDER_CONCURRENCY": "2",
        }
    )
    stack.start_workers(2, concurrency=2)
    cards = [card(story.workspace, f"Card {i}") for i in range(5)]
    for feature in cards:
        engine.launch_pipeline(feature, story.owner)

    def all_done() -> bool:
        return (
            Run.objects.filter(feature__in=cards, status=Run.Status.SUCCEEDED).count() == 10
            or Run.objects.filter(feature__in=cards, status=Run.Status.FAILED).exists()
        )

    wait_until(all_done, timeout=120, what="ten runs to finish on two workers")
    assert not Run.objects.filter(feature__in=cards, status=Run.Status.FAILED).exists()
    assert len(fake.requests) == 10
    assert fake.max_in_flight == 2  # reached, never exceeded
    # Four pool processes competed for two slots: some steps waited for one.
    assert RunLog.objects.filter(
        run__feature__in=cards, message__startswith="Waiting for a provider slot"
    ).exists()
    # Every call was paid for by the workers' usage counts.
    assert all(r.input_tokens == 1000 for r in Run.objects.filter(feature__in=cards))
