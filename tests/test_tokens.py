"""features.tokens: create (secret returned once, only its hash kept), verify, revoke."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.forms.models import model_to_dict

from features.models import ApiToken
from features.tokens import (
    TokenError,
    do_create_api_token,
    do_revoke_api_token,
    user_for_secret,
)


def test_it_keeps_only_a_hash_and_a_prefix_of_the_secret(story):
    token, secret = do_create_api_token(story.owner, "deploy script")

    assert secret.startswith("rw_")
    assert len(secret) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.name, stored.user, stored.prefix) == ("deploy script", story.owner, secret[:8])
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(v) for v in model_to_dict(stored).values()}


def test_it_makes_a_different_secret_each_time(story):
    secrets = {do_create_api_token(story.owner)[1] for _ in range(5)}

    assert len(secrets) == 5


def test_it_names_an_unnamed_token(story):
    assert do_create_api_token(story.owner, "  ")[0].name == "API token"


def test_it_refuses_a_name_over_100_characters(story):
    with pytest.raises(TokenError):
        do_create_api_token(story.owner, "x" * 101)


def test_it_finds_the_user_of_a_secret_and_notes_the_use(story):
    token, secret = do_create_api_token(story.owner)

    assert user_for_secret(secret) == story.owner
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_it_writes_last_used_at_at_most_once_a_minute(story):
    token, secret = do_create_api_token(story.owner)
    user_for_secret(secret)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None

    user_for_secret(secret)
    token.refresh_from_db()
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    user_for_secret(secret)
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at > first


def test_it_revokes_once(story):
    token, secret = do_create_api_token(story.owner)

    revoked_at = do_revoke_api_token(token).revoked_at
    again = do_revoke_api_token(token).revoked_at

    assert revoked_at is not None
    assert again == revoked_at
    assert user_for_secret(secret) is None


@pytest.mark.parametrize("secret", ["", "rw_unknown", "x" * 201])
def test_it_knows_no_user_for_a_wrong_secret(story, secret):
    assert user_for_secret(secret) is None
