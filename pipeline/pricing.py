"""What a step cost, from the ModelPrice rows operators keep in the admin.

A model without a price costs 0 (and says so once in the log of the step that used it), so a
local model or the offline provider never blocks a budget.
"""

from __future__ import annotations

from decimal import Decimal

from pipeline.models import ModelPrice
from pipeline.providers.base import Usage

MILLION = Decimal(1_000_000)
# Run.cost_usd keeps six decimal places.
CENT_FRACTION = Decimal("0.000001")


def price_for(provider: str, model: str) -> ModelPrice | None:
    """The exact (provider, model) row, else the longest model prefix listed for the provider:
    a price for ``claude-sonnet-4-5`` also covers ``claude-sonnet-4-5-20250929``."""
    if not model:
        return None
    prices = list(ModelPrice.objects.filter(provider=provider))
    exact = next((p for p in prices if p.model == model), None)
    if exact is not None:
        return exact
    prefixed = [p for p in prices if p.model and model.startswith(p.model)]
    return max(prefixed, key=lambda p: len(p.model), default=None)


def cost_of(usage: Usage, price: ModelPrice | None) -> Decimal:
    if price is None:
        return Decimal(0)
    total = (
        Decimal(usage.input_tokens) * price.input_per_mtok
        + Decimal(usage.output_tokens) * price.output_per_mtok
        + Decimal(usage.cache_read_tokens) * price.cache_read_per_mtok
        + Decimal(usage.cache_write_tokens) * price.cache_write_per_mtok
    )
    return (total / MILLION).quantize(CENT_FRACTION)


def step_cost(provider: str, model: str, usage: Usage) -> tuple[Decimal, bool]:
    """(cost in USD, whether a price was found)."""
    price = price_for(provider, model)
    return cost_of(usage, price), price is not None
