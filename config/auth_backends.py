"""The login throttle's authentication backend, for HTTP logins only."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' check, skipped when there is no request: a script calling authenticate()
    (or the test client's login()) is no one guessing passwords over HTTP, and axes would
    otherwise refuse it outright. Every HTTP login passes a request and is throttled."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
