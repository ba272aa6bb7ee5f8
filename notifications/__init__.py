"""Notifications: outbound webhooks (JSON or Slack), email (immediate or a daily digest) and
signed one-click Accept / Reject / Start links. Listens on ``features.notices``."""
