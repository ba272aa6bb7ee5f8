"""Tags each request with the door it came through, so audit entries say "api" or "admin"."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import acting_from


def _source_of(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web"


def request_source(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., object]:
    def middleware(request: HttpRequest) -> HttpResponse:
        with acting_from(_source_of(request.path_info)):
            return get_response(request)

    return middleware
