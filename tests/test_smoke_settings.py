from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection


def test_it_uses_the_configured_database_and_redis(db):
    assert connection.settings_dict["NAME"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert client.ping()
    finally:
        client.close()


def test_it_runs_on_the_test_settings():
    assert settings.SETTINGS_MODULE == "config.settings.test"
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
