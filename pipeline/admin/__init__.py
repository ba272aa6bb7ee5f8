"""Django admin, the operator's console: runs, logs and workers; workspaces and cards."""

from __future__ import annotations

from pipeline.admin import cards, runs

__all__ = ["cards", "runs"]
