"""Provider registry: the engine asks for a provider by the name a recipe step carries."""

from __future__ import annotations

import importlib

from pipeline.providers.base import PermanentProviderError, Provider
from pipeline.providers.offline import OfflineProvider

_PROVIDERS: dict[str, Provider] = {"offline": OfflineProvider()}

# Remote providers load on first use: importing the SDK costs time the offline path never
# needs, and a missing API key is reported when a step uses the provider, not at start-up.
_LAZY = {
    "anthropic": ("pipeline.providers.anthropic", "AnthropicProvider"),
    "openai": ("pipeline.providers.openai_compat", "OpenAICompatibleProvider"),
    "cli": ("pipeline.providers.cli", "CliProvider"),
}


def get_provider(name: str) -> Provider:
    name = name or "offline"
    if name not in _PROVIDERS and name in _LAZY:
        module, attribute = _LAZY[name]
        _PROVIDERS[name] = getattr(importlib.import_module(module), attribute)()
    try:
        return _PROVIDERS[name]
    except KeyError:
        available = sorted({*_PROVIDERS, *_LAZY})
        raise PermanentProviderError(
            f"Provider {name!r} is not available here; available: {', '.join(available)}. "
            "Change the recipe's provider or the workspace default."
        ) from None


def register_provider(provider: Provider) -> None:
    _PROVIDERS[provider.name] = provider


def provider_names() -> list[str]:
    """Every provider name a recipe may carry here, sorted (registered ones included)."""
    return sorted({*_PROVIDERS, *_LAZY})
