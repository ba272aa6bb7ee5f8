"""Local development: the embedded defaults, DEBUG on, a fixed dev-only secret."""

from __future__ import annotations

from config.env import env_bool, env_str
from config.settings.base import *  # noqa: F403

DEBUG = env_bool("DEBUG", True)
# The built-in key only ever serves DEBUG; with DEBUG off a real SECRET_KEY is required.
SECRET_KEY = env_str(
    "SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production" if DEBUG else None
)

# A visible pace on the board: each offline step takes a moment, as a real model would.
RUNWAY_OFFLINE_DELAY_SECONDS = float(env_str("RUNWAY_OFFLINE_DELAY_SECONDS", "0.8"))
