"""`manage.py create_api_token USERNAME [--name]`: prints a working token, once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from features.models import ApiToken
from features.tokens import user_for_secret


def test_it_prints_only_the_token(story):
    out, err = StringIO(), StringIO()

    call_command("create_api_token", "alice", "--name", "CI", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert user_for_secret(secret) == story.owner
    assert ApiToken.objects.get(user=story.owner).name == "CI"
    assert "not stored" in err.getvalue()
    assert secret not in err.getvalue()


def test_it_names_the_unknown_user(db):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_api_token", "nobody", stdout=StringIO(), stderr=StringIO())
