"""Provider registry: the engine asks for a provider by the name a recipe step carries."""

from __future__ import annotations

from pipeline.providers.base import PermanentProviderError, Provider
from pipeline.providers.offline import OfflineProvider

_PROVIDERS: dict[str, Provider] = {"offline": OfflineProvider()}


def get_provider(name: str) -> Provider:
    try:
        return _PROVIDERS[name or "offline"]
    except KeyError:
        raise PermanentProviderError(
            f"Provider {name!r} is not available here; available: {', '.join(_PROVIDERS)}. "
            "Change the recipe's provider or the workspace default."
        ) from None


def register_provider(provider: Provider) -> None:
    _PROVIDERS[provider.name] = provider
