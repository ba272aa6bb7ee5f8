"""Websocket consumers: the board (rendered cards for a workspace) and a run's live log."""

from __future__ import annotations

from pipeline.consumers.board import BoardConsumer
from pipeline.consumers.run_log import RunLogConsumer

__all__ = ["BoardConsumer", "RunLogConsumer"]
