"""The provider registry: offline always, remote providers on first use, clear refusals."""

from __future__ import annotations

import pytest

from features.actions import do_create_workspace
from pipeline.providers import get_provider
from pipeline.providers.base import PermanentProviderError
from tests.factories import UserFactory


def test_it_loads_each_remote_provider_on_first_use():
    assert get_provider("").name == "offline"
    assert [get_provider(n).name for n in ("anthropic", "openai", "cli")] == [
        "anthropic",
        "openai",
        "cli",
    ]


def test_an_unknown_provider_names_the_ones_available():
    with pytest.raises(PermanentProviderError, match="available: anthropic, cli, offline, openai"):
        get_provider("gemini")


def test_new_workspaces_start_on_the_configured_default_provider(db, settings):
    settings.RUNWAY_DEFAULT_PROVIDER = "anthropic"
    workspace = do_create_workspace(
        name="Claude team", template="quick", owner=UserFactory.create()
    )
    assert workspace.default_provider == "anthropic"
