"""Debian's Chromium, launched the same way by the browser tests and the push benchmark."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Headless, and quiet on a machine with no network: no background fetches, updates or sync.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]  # fmt: skip
