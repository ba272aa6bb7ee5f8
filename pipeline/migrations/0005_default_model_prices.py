"""Example prices for a few Claude models, in USD per million tokens.

These are EXAMPLES to start from: check the provider's current price list and adjust them in
the admin (Pipeline → Model prices). Rows an operator already created are left alone.
"""

from decimal import Decimal

from django.db import migrations

# (model, input, output, cache read, cache write) per million tokens. Cache reads are priced at
# a tenth of input and 5-minute cache writes at 1.25x input, as Anthropic priced them in 2025;
# claude-sonnet-4-6 is assumed to keep the Sonnet tier's price. Verify all of them.
EXAMPLE_PRICES = [
    ("claude-opus-4-5", "5", "25", "0.50", "6.25"),
    ("claude-sonnet-4-6", "3", "15", "0.30", "3.75"),
    ("claude-sonnet-4-5", "3", "15", "0.30", "3.75"),
    ("claude-haiku-4-5", "1", "5", "0.10", "1.25"),
]


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("pipeline", "ModelPrice")
    for model, inp, out, read, write in EXAMPLE_PRICES:
        ModelPrice.objects.get_or_create(
            provider="anthropic",
            model=model,
            defaults={
                "input_per_mtok": Decimal(inp),
                "output_per_mtok": Decimal(out),
                "cache_read_per_mtok": Decimal(read),
                "cache_write_per_mtok": Decimal(write),
            },
        )


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("pipeline", "ModelPrice")
    for model, inp, out, _read, _write in EXAMPLE_PRICES:
        ModelPrice.objects.filter(
            provider="anthropic",
            model=model,
            input_per_mtok=Decimal(inp),
            output_per_mtok=Decimal(out),
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0004_run_rerun_of_and_model_prices")]

    operations = [migrations.RunPython(seed, unseed)]
