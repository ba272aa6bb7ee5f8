"""Safe defaults: production settings unless development or tests are chosen explicitly, no
fallback secret outside development, secrets masked on error pages, and a strict
Content-Security-Policy that the pages satisfy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.views.debug import technical_500_response

ROOT = Path(settings.BASE_DIR)
# Secrets for the debug page test, kept far from any line a traceback would quote.
DATABASE_URL = "postgres://runway:" + "db-pass-123@db.internal:5432/runway"
REDIS_URL = "redis://:" + "redis-pass-456@cache.internal:6379/0"
LLM_URL = "http://llm.internal" + ":8000/v1"
SECRETS = ("db-pass-" + "123", "redis-pass-" + "456", "db." + "internal", "llm." + "internal")

PROBE = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


def run(code: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG"}
    }
    return subprocess.run(
        [sys.executable, *code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "entry",
    [
        ["manage.py", "shell", "-c", PROBE],
        ["-c", f"import config.asgi; {PROBE}"],
        ["-c", f"import django; import config.celery; django.setup(); {PROBE}"],
    ],
    ids=["manage.py", "asgi", "celery"],
)
def test_every_entry_point_defaults_to_production(entry: list[str]) -> None:
    without_secret = run(entry)
    with_secret = run(entry, SECRET_KEY="k" * 50)

    assert without_secret.returncode != 0
    assert "SECRET_KEY is required" in without_secret.stderr
    assert with_secret.returncode == 0, with_secret.stderr
    assert with_secret.stdout.strip().splitlines()[-1] == "config.settings.prod False"


def test_development_is_chosen_explicitly_by_make_run_and_tests_by_make_test() -> None:
    def dry_run(target: str) -> str:
        return subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    assert "DJANGO_SETTINGS_MODULE=config.settings.dev" in dry_run("run")
    assert "DJANGO_SETTINGS_MODULE=config.settings.test" in dry_run("pytest")
    assert "DJANGO_SETTINGS_MODULE=config.settings.test" in (ROOT / ".ci" / "run").read_text()


def test_the_dev_secret_exists_only_with_debug_on() -> None:
    dev = run(
        ["-c", f"import django; django.setup(); {PROBE}"],
        DJANGO_SETTINGS_MODULE="config.settings.dev",
    )
    no_debug = run(
        ["-c", f"import django; django.setup(); {PROBE}"],
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        DEBUG="0",
    )

    assert dev.stdout.strip().splitlines()[-1] == "config.settings.dev True"
    assert no_debug.returncode != 0
    assert "SECRET_KEY is required" in no_debug.stderr


def _debug_page(request) -> str:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(request, *sys.exc_info()).content.decode()


def test_the_debug_page_masks_connection_strings(settings) -> None:
    settings.DEBUG = True
    settings.DATABASE_URL = DATABASE_URL
    settings.REDIS_URL = settings.CELERY_BROKER_URL = REDIS_URL
    # Some servers copy the process environment into request.META.
    request = RequestFactory().get(
        "/boom", DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, OPENAI_BASE_URL=LLM_URL
    )

    page = _debug_page(request)

    assert "boom" in page  # it is the debug page
    assert "DATABASE_URL" in page
    assert "********************" in page
    for secret in SECRETS:
        assert secret not in page


# --- Content-Security-Policy -------------------------------------------------------------------

INLINE = [
    (
        re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"),
        "inline script",
    ),
    (re.compile(r"<style\b"), "style element"),
    (re.compile(r"\sstyle=\""), "style attribute"),
    (re.compile(r"\son[a-z]+=\""), "event handler attribute"),
    (re.compile(r"javascript:"), "javascript: URL"),
    (re.compile(r"\bhx-on"), "hx-on handler (needs eval)"),
]


def test_templates_have_nothing_the_policy_would_block() -> None:
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text[: match.start()].count("\n") + 1
                found.append(f"{template.relative_to(ROOT)}:{line}: {what}")
    assert found == []


@pytest.mark.django_db
def test_pages_carry_a_strict_policy(story) -> None:
    client = Client()
    client.force_login(story.owner)

    for url in ("/login/", f"/w/{story.workspace.slug}/", "/api/docs"):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        directives = dict(
            (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
        )
        assert directives["script-src"] == ["'self'"], url
        assert directives["style-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"], url
        assert directives["frame-ancestors"] == ["'none'"], url
