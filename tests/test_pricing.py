"""Costs come from the admin's ModelPrice rows; a spent budget holds new runs until it is raised."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.test import Client

from features.models import Feature, Workspace
from pipeline import engine, executor, pricing
from pipeline.models import ModelPrice, Run
from pipeline.providers.base import Usage
from tests import fake_llm
from tests.engine_helpers import card, chain
from tests.fake_llm import FakeLLM
from tests.test_admin import admin_url, form_data


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    yield from fake_llm.serve(monkeypatch)


def test_it_prices_every_kind_of_token(db):
    price = ModelPrice(
        provider="anthropic",
        model="m",
        input_per_mtok=Decimal("3"),
        output_per_mtok=Decimal("15"),
        cache_read_per_mtok=Decimal("0.30"),
        cache_write_per_mtok=Decimal("3.75"),
    )
    usage = Usage(
        input_tokens=1_000, output_tokens=2_000, cache_read_tokens=10_000, cache_write_tokens=400
    )
    # 0.003 + 0.030 + 0.003 + 0.0015
    assert pricing.cost_of(usage, price) == Decimal("0.037500")
    assert pricing.cost_of(usage, None) == Decimal(0)


def test_a_price_for_a_model_covers_its_dated_versions(db):
    ModelPrice.objects.create(
        provider="anthropic", model="claude-x", input_per_mtok=1, output_per_mtok=2
    )
    ModelPrice.objects.create(
        provider="anthropic", model="claude-x-large", input_per_mtok=5, output_per_mtok=9
    )
    dated = pricing.price_for("anthropic", "claude-x-20260101")
    larger = pricing.price_for("anthropic", "claude-x-large-2")
    assert dated is not None
    assert dated.model == "claude-x"
    assert larger is not None
    assert larger.model == "claude-x-large"
    assert pricing.price_for("openai", "claude-x") is None
    assert pricing.price_for("anthropic", "") is None


def test_the_example_prices_are_seeded_for_claude(db):
    # The data migration's own function, on an empty table: a transactional test earlier in
    # this process flushes the rows the migration wrote, so they cannot be read back here.
    seeding = importlib.import_module("pipeline.migrations.0005_default_model_prices")
    ModelPrice.objects.all().delete()
    ModelPrice.objects.create(
        provider="anthropic", model="claude-haiku-4-5", input_per_mtok=9, output_per_mtok=9
    )

    seeding.seed(django_apps, None)

    seeded = set(ModelPrice.objects.filter(provider="anthropic").values_list("model", flat=True))
    assert {"claude-sonnet-4-6", "claude-haiku-4-5"} <= seeded
    # A price an operator set is left alone.
    assert ModelPrice.objects.get(model="claude-haiku-4-5").input_per_mtok == 9


def test_a_spent_budget_pauses_the_pipeline_until_an_admin_raises_it(
    story, fake, eager, no_enqueue, settings
):
    root = User.objects.create_superuser("root", "root@example.com", "password")
    console = Client()
    console.force_login(root)
    fake_llm.use_provider(story.workspace, "anthropic", "claude-test")
    ModelPrice.objects.create(
        provider="anthropic",
        model="claude-test",
        input_per_mtok=Decimal("3"),
        output_per_mtok=Decimal("15"),
    )  # 1000 in + 500 out = $0.0105 a call
    Workspace.objects.filter(pk=story.workspace.pk).update(monthly_budget_usd=Decimal("0.01"))
    feature = card(story.workspace)
    with no_enqueue():
        first = engine.launch_pipeline(feature, story.owner).run
        executor.execute_run(first.pk, "w/1")
        architecture, tasks = chain(feature)
        assert architecture.status == Run.Status.SUCCEEDED
        assert architecture.cost_usd == Decimal("0.010500")
        executor.execute_run(tasks.pk, "w/1")  # the budget is spent: it waits

    tasks.refresh_from_db()
    assert (tasks.status, tasks.error_kind, tasks.attempt) == ("queued", "deferred", 0)
    feature.refresh_from_db()
    assert feature.status_note == (
        "Budget reached: $0.01 of $0.01 spent this month; raise the budget to resume"
    )
    assert len(fake.requests) == 1
    runs_page = story.client_for(story.owner).get(f"/w/{story.workspace.slug}/runs/")
    assert "AI cost this month" in runs_page.content.decode()
    assert "$0.01" in runs_page.content.decode()

    url = admin_url(Workspace, "change", story.workspace.pk)
    data = form_data(console, url, monthly_budget_usd="5.00")
    with eager():
        assert console.post(url, data).status_code == 302

    assert [r.status for r in chain(feature)] == ["succeeded", "succeeded"]
    feature.refresh_from_db()
    assert feature.status == Feature.Status.DONE
    assert feature.children.count() == 3
    board = story.client_for(story.owner).get(f"/w/{story.workspace.slug}/")
    assert "AI cost of this card's runs: $0.021000\">$0.02</span>" in board.content.decode()
