"""Every API door asks who is there: a bearer token for scripts, or a browser session with CSRF."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from config.api import api
from features.models import ApiToken, Feature
from features.tokens import do_create_api_token, do_revoke_api_token
from tests.api_helpers import error_of


def every_operation() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return [
        (method, re.sub(r"\{\w+\}", "1", path))
        for path, operations in schema["paths"].items()
        for method in operations
    ]


@pytest.mark.parametrize(("method", "path"), every_operation())
def test_it_asks_an_anonymous_caller_to_authenticate_everywhere(db, method, path):
    response = getattr(Client(), method)(path, {}, content_type="application/json")

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="runway"'


def test_it_accepts_a_bearer_token_and_notes_when_it_was_used(story):
    token, secret = do_create_api_token(story.owner, "script")

    response = Client().get("/api/workspaces", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 200
    assert [w["slug"] for w in response.json()] == ["alices-team"]
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer rw_not-a-real-token", "Bearer ", "Bearer " + "x" * 500])
def test_it_refuses_an_unknown_token(story, header):
    response = Client().get("/api/workspaces", headers={"Authorization": header})

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"


def test_it_refuses_a_revoked_token(story):
    token, secret = do_create_api_token(story.owner, "script")
    do_revoke_api_token(token)

    response = Client().get("/api/workspaces", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"


def test_it_refuses_the_token_of_a_deactivated_user(story):
    _, secret = do_create_api_token(story.owner, "script")
    story.owner.is_active = False
    story.owner.save()

    response = Client().get("/api/workspaces", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 401


def test_it_does_not_take_other_schemes(story):
    response = Client().get(
        "/api/workspaces", headers={"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}
    )

    assert response.status_code == 401


def test_it_accepts_the_browser_session_for_reads(story):
    response = story.client_for(story.viewer).get("/api/workspaces")

    assert response.status_code == 200
    assert response.json()[0]["role"] == "viewer"


def test_it_wants_the_csrf_token_for_session_writes(story):
    client = Client(enforce_csrf_checks=True)
    client.force_login(story.owner)
    body = {"workspace": "alices-team", "title": "From the browser"}

    refused = client.post("/api/features", body, content_type="application/json")
    client.get("/w/alices-team/")  # a page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/features", body, content_type="application/json", headers={"X-CSRFToken": csrf}
    )

    assert refused.status_code == 403
    assert error_of(refused)["code"] == "csrf_failed"
    assert accepted.status_code == 201
    assert Feature.objects.filter(title="From the browser").count() == 1


def test_it_needs_no_csrf_token_with_a_bearer_token(story):
    _, secret = do_create_api_token(story.owner, "script")
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})

    response = client.post(
        "/api/features",
        {"workspace": "alices-team", "title": "Script"},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert ApiToken.objects.get(user=story.owner).last_used_at is not None
