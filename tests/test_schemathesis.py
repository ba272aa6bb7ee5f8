"""The API against its own OpenAPI schema: generated requests (bounded) never cause a 5xx, and
every answer matches what the schema promises (status, content type, headers, body); data the
schema calls invalid is refused, and the schema states the rules the API enforces.

`make test` runs a few examples per operation; `make fuzz` runs RUNWAY_FUZZ_EXAMPLES (200)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pipeline import engine
from tests.api_helpers import reset_launch_limits, token_for
from tests.engine_helpers import card

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = int(os.environ.get("RUNWAY_FUZZ_EXAMPLES", "5"))


@pytest.fixture
def seeded(story, eager, settings):
    """A workspace with a finished pipeline, so generated ids sometimes hit real rows."""
    settings.RUNWAY_API_STREAM_POLL_SECONDS = 0.01
    settings.RUNWAY_API_STREAM_MAX_SECONDS = 1  # a stream of a live run ends soon
    reset_launch_limits()
    with eager():
        engine.launch_pipeline(card(story.workspace, "Seeded"), story.owner)
    card(story.workspace, "Idle card")
    return story


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    # Django's test client keeps the test's transaction open by not closing connections
    # around each request; the bare WSGI handler schemathesis calls must be told the same.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(seeded):
    return {"Authorization": f"Bearer {token_for(seeded.owner)}"}


# Loaded when the module is imported (the schema needs no database). The lazy
# schemathesis.pytest.from_fixture loader fails under pytest 9 (it sets node._nodeid).
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),
    database=None,  # nothing written into the repository
    derandomize=True,  # the same examples every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_it_answers_every_generated_request_as_documented(case, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
