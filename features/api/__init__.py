"""The JSON API's workspace and feature endpoints (routes) and what every router shares (base)."""
