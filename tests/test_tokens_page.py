"""/profile/tokens: list, create (the secret shown once) and revoke your own tokens."""

from __future__ import annotations

import pytest
from django.test import Client

from features.models import ApiToken
from features.tokens import do_create_api_token, user_for_secret


def test_it_needs_a_login(db):
    response = Client().get("/profile/tokens")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_lists_only_your_tokens(story):
    do_create_api_token(story.owner, "alice's script")
    do_create_api_token(story.teammate, "bob's script")

    page = story.client_for(story.owner).get("/profile/tokens").content.decode()

    assert "alice&#x27;s script" in page
    assert "bob" not in page.replace("bob&#x27;", "")
    assert "Log out" in page  # the site's layout, from base.html


def test_it_shows_a_new_secret_once(story):
    client = story.client_for(story.owner)

    created = client.post("/profile/tokens", {"name": "CI"})
    token = ApiToken.objects.get(user=story.owner)
    page = created.content.decode()
    secret = page.split("<code data-token>")[1].split("</code>")[0]

    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    assert user_for_secret(secret) == story.owner
    assert token.prefix == secret[:8]
    later = client.get("/profile/tokens").content.decode()
    assert secret not in later
    assert f"{token.prefix}…" in later


def test_it_refuses_a_name_that_is_too_long(story):
    response = story.client_for(story.owner).post("/profile/tokens", {"name": "x" * 101})

    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_it_revokes_your_token(story):
    token, secret = do_create_api_token(story.owner, "old")

    response = story.client_for(story.owner).post(f"/profile/tokens/{token.pk}/revoke")

    assert response.status_code == 302
    assert user_for_secret(secret) is None
    assert "revoked" in story.client_for(story.owner).get("/profile/tokens").content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_will_not_revoke_someone_elses_token(story, method):
    token, secret = do_create_api_token(story.teammate, "bob's")

    response = getattr(story.client_for(story.owner), method)(f"/profile/tokens/{token.pk}/revoke")

    assert response.status_code == (404 if method == "post" else 405)
    assert user_for_secret(secret) == story.teammate
