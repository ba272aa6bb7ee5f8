"""Django admin, the operator's console: runs, logs and workers; workspaces and cards."""

from __future__ import annotations

from pipeline.admin import batches, bulk, cards, runs

__all__ = ["batches", "bulk", "cards", "runs"]
