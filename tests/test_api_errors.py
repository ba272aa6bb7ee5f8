"""Bad input gets a clear JSON answer with the right status, and writes nothing."""

from __future__ import annotations

import json

import pytest

from features.models import Feature
from tests.api_helpers import api_client, error_of

URL = "/api/features"


@pytest.fixture
def client(story):
    return api_client(story.owner)


def test_it_answers_400_to_a_body_that_is_not_json(story, client):
    response = client.post(
        URL, '{"workspace": "alices-team", "title": ', content_type="application/json"
    )

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "malformed_json",
        "message": "The request body is not valid JSON.",
    }
    assert not Feature.objects.exists()


def test_it_refuses_a_body_over_64_kb_before_parsing_it(story, client):
    # Not JSON at all: had it been parsed, the answer would be a 400.
    response = client.post(URL, "x" * (64 * 1024 + 1), content_type="application/json")

    assert response.status_code == 413
    assert error_of(response) == {
        "code": "too_large",
        "message": "Request bodies are at most 64 KB.",
    }


def test_it_refuses_a_large_body_even_before_authentication(story):
    response = api_client().post(URL, "x" * (65 * 1024), content_type="application/json")

    assert response.status_code == 413


def test_it_accepts_a_body_just_under_the_limit(story, client):
    body = {"workspace": "alices-team", "title": "Big", "description": "d" * 20_000}

    assert len(json.dumps(body)) < 64 * 1024
    assert client.post(URL, body, content_type="application/json").status_code == 201


def test_it_refuses_a_json_body_that_is_not_an_object(story, client):
    response = client.post(URL, [1, 2], content_type="application/json")

    assert response.status_code == 422
    assert error_of(response)["code"] == "validation_error"


def test_it_refuses_text_that_cannot_be_stored(story, client):
    raw = '{"workspace": "alices-team", "title": "half a \\ud800 surrogate"}'

    response = client.post(URL, raw, content_type="application/json")

    assert response.status_code == 422
    assert error_of(response)["field"] == "title"


def test_it_lists_every_problem_and_names_the_first_field(story, client):
    response = client.post(
        URL,
        {"workspace": "alices-team", "kind": "saga", "extra": 1},
        content_type="application/json",
    )

    error = error_of(response)
    assert error["field"] == "title"
    assert error["message"].startswith("title: required; kind: Input should be ")
    assert error["message"].endswith("; extra: unknown field")


def test_it_answers_404_in_json_for_an_unknown_endpoint(story, client):
    response = client.get("/api/nothing/here")

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "not_found",
        "message": "No API endpoint GET /api/nothing/here.",
    }


def test_it_answers_405_in_json_with_the_allowed_methods(story, client):
    response = client.delete(URL)

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}
