"""Local development: the embedded defaults, DEBUG on, a fixed dev-only secret."""

from __future__ import annotations

from config.env import env_bool, env_str
from config.settings.base import *  # noqa: F403

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production")

# A visible pace on the board: each offline step takes a moment, as a real model would.
RUNWAY_OFFLINE_DELAY_SECONDS = float(env_str("RUNWAY_OFFLINE_DELAY_SECONDS", "0.8"))
