"""Browser tests: Debian's Chromium (never a downloaded browser) against a live daphne server,
a real Celery worker and beat, all on the test database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from playwright.sync_api import Page

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import Story, make_story
from tests.integration.processes import Stack

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make to
# set up data and check results are still plain blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(
    os.environ.get("RUNWAY_SCREENSHOTS") or Path(settings.BASE_DIR) / "var" / "screenshots"
)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install chromium` (make test does it as root)"
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@dataclass
class Live:
    url: str
    stack: Stack
    story: Story

    def login(self, page: Page, username: str = "alice", password: str = "password") -> None:  # noqa: S107
        page.goto(f"{self.url}/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.url}/w/**")

    def board(self) -> str:
        return f"{self.url}/w/{self.story.workspace.slug}/"


@pytest.fixture
def live(transactional_db: None) -> Iterator[Live]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.close()
    story = make_story()
    # Each offline step takes a moment, so progress is visible as it would be with a model.
    stack = Stack({"RUNWAY_OFFLINE_DELAY_SECONDS": "0.4"})
    url = stack.start_web(wait=False)  # daphne boots while the worker does
    stack.start_beat()
    stack.start_worker()
    stack.wait_for_web()
    yield Live(url, stack, story)
    stack.stop()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(autouse=True)
def _no_policy_violations(page: Page) -> Iterator[None]:
    """Every page must satisfy the Content-Security-Policy: Chromium reports each blocked
    script, style or connection on the console, and any report fails the test."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{message.text} at {message.location}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield
    assert violations == []
