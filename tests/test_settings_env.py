"""Settings fail loudly on bad or missing environment values."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str


def import_settings(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_requires_a_secret_key_in_production():
    result = import_settings("config.settings.prod")
    assert result.returncode != 0
    assert "SECRET_KEY is required outside DEBUG" in result.stderr
    assert import_settings("config.settings.prod", SECRET_KEY="x" * 50).returncode == 0


def test_it_requires_a_secret_key_when_dev_runs_without_debug():
    result = import_settings("config.settings.dev", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr
    assert import_settings("config.settings.dev").returncode == 0


def test_it_reads_secrets_from_files(tmp_path, monkeypatch):
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
    assert env_str("SOME_SECRET") == "from-a-file"
    monkeypatch.setenv("SOME_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_str("SOME_SECRET")


def test_it_refuses_values_it_cannot_parse(monkeypatch):
    monkeypatch.setenv("A_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="not a boolean"):
        env_bool("A_FLAG", False)
    monkeypatch.setenv("A_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("A_NUMBER", 1)


def test_an_anthropic_key_makes_claude_the_default_provider():
    probe = "from django.conf import settings; print(settings.RUNWAY_DEFAULT_PROVIDER)"

    def default_provider(**env: str) -> str:
        clean = {
            k: v
            for k, v in os.environ.items()
            if k not in {"ANTHROPIC_API_KEY", "RUNWAY_DEFAULT_PROVIDER"}
        }
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {probe}"],
            cwd=settings.BASE_DIR,
            env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.dev", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    assert default_provider() == "offline"
    assert default_provider(ANTHROPIC_API_KEY="sk-test") == "anthropic"
    assert default_provider(ANTHROPIC_API_KEY="sk-test", RUNWAY_DEFAULT_PROVIDER="cli") == "cli"
