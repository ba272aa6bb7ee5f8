"""Request checks every door shares, before any view runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.decorators import sync_and_async_middleware

Handler = Callable[[HttpRequest], Any]
API_PREFIX = "/api/"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _nul_where(request: HttpRequest) -> str | None:
    """Where a NUL character hides in the request's path, query or form fields, if anywhere.

    PostgreSQL cannot store NUL in text, and no name, slug, path or form value needs one: a
    request carrying one is malformed wherever it would have gone (a lookup, a filter, a save).
    File uploads are bytes and may hold anything; their names may not.
    """
    if "\x00" in request.path:
        return "the URL path"
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
        return "the query string"
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        try:
            fields = request.POST.lists()
            names = [f.name or "" for fs in request.FILES.lists() for f in fs[1]]
        except MultiPartParserError:
            return None  # Django answers a broken form itself, with a 400
        if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in fields):
            return "a form field"
        if any("\x00" in name for name in names):
            return "an uploaded file's name"
    return None


def _refusal(request: HttpRequest, where: str) -> HttpResponse:
    message = f"NUL characters are not allowed in {where}."
    if request.path.startswith(API_PREFIX):
        error = {"code": "bad_request", "message": message}
        return JsonResponse({"error": error}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


@sync_and_async_middleware
def refuse_nul_characters(get_response: Handler) -> Handler:
    """400 for a NUL anywhere in the path, query or form: never a 500 from the database."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            where = await sync_to_async(_nul_where)(request)
            if where is not None:
                return _refusal(request, where)
            response: Awaitable[HttpResponseBase] = get_response(request)
            return await response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        where = _nul_where(request)
        if where is not None:
            return _refusal(request, where)
        response: HttpResponseBase = get_response(request)
        return response

    return middleware
