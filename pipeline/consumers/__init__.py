"""Websocket consumers: the board (rendered cards for a workspace), a card's page and a run's
live log."""

from __future__ import annotations

from pipeline.consumers.board import BoardConsumer
from pipeline.consumers.card import CardConsumer
from pipeline.consumers.run_log import RunLogConsumer

__all__ = ["BoardConsumer", "CardConsumer", "RunLogConsumer"]
