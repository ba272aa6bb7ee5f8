"""The JSON API at /api/: one NinjaAPI, its two ways in, its error format and its routers.

Auth: ``Authorization: Bearer <token>`` (tokens from /profile/tokens or
``manage.py create_api_token``) for scripts, or the browser's session, with CSRF on writes.
Every error is ``{"error": {"code", "message", "field"?}}`` with its HTTP status; so are the
ones Django answers before the API sees a request (413, unknown path, wrong method).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import Operation
from ninja.parser import Parser
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from config.jsonlimits import loads_limited
from features.actions import FeatureError
from features.api.base import ApiError, error_body
from features.tokens import TokenError, token_for_secret
from pipeline.api.bulk import router as bulk_router
from pipeline.api.cards import router as features_router
from pipeline.api.runs import router as pipeline_router
from pipeline.api.trees import router as trees_router
from pipeline.engine import EngineError
from skills.api import router as skills_router

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation_error",
    429: "rate_limited",
}


# --- Auth --------------------------------------------------------------------------------------


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User:
        found = token_for_secret(token)
        if found is None:
            # A wrong token is an error, not a reason to try the session instead.
            raise ApiError(
                401,
                "invalid_token",
                "This API token is unknown or revoked; create one at /profile/tokens.",
            )
        user = found.user
        request.user = user
        # Log streams opened with this token end when it is revoked (pipeline.api.stream_guard).
        request.api_token_id = found.pk  # type: ignore[attr-defined]
        return user


class SessionAuth(APIKeyCookie):
    """The browser's login. CSRF is checked on writes, and only for a logged-in session, so an
    anonymous request is told to authenticate (401) rather than about CSRF (403)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = request.user
        if not isinstance(user, User) or not user.is_authenticated:
            return None
        if request.method not in _SAFE_METHODS and check_csrf(request) is not None:
            raise ApiError(
                403,
                "csrf_failed",
                "CSRF check failed: send the csrftoken cookie's value as an X-CSRFToken header.",
            )
        return user


# --- The API -----------------------------------------------------------------------------------


class LimitedJsonParser(Parser):
    """Request bodies nested deeper than config.jsonlimits allows are refused (400) before
    Python's recursive parser or anything after it walks them."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return cast(dict[str, Any], loads_limited(request.body))


class RunwayApi(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__


api = RunwayApi(
    title="Runway API",
    version="1",
    description=(
        "Cards, pipelines, runs, workers, skills and recipes of your workspaces. "
        "Authenticate with `Authorization: Bearer <token>` (create one at /profile/tokens) or "
        "a logged-in session (send X-CSRFToken on writes). Every error is "
        '`{"error": {"code", "message", "field"?}}`.'
    ),
    urls_namespace="api",
    auth=[TokenAuth(), SessionAuth()],
    parser=LimitedJsonParser(),
)
api.add_router("", features_router, tags=["features"])
api.add_router("", pipeline_router, tags=["runs & workers"])
api.add_router("", bulk_router, tags=["bulk actions"])
api.add_router("", trees_router, tags=["stories, subtasks & batches"])
api.add_router("", skills_router, tags=["skills & recipes"])


def _error(
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    response = api.create_response(request, error_body(code, message, field), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message, exc.field, exc.headers)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request,
        401,
        "unauthenticated",
        "Send `Authorization: Bearer <token>` (create one at /profile/tokens) or log in.",
        headers={"WWW-Authenticate": 'Bearer realm="runway"'},
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        # The one HttpError ninja raises itself: a body that is not JSON.
        return _error(request, 400, "malformed_json", "The request body is not valid JSON.")
    code = _CODES.get(exc.status_code, "error")
    return _error(request, exc.status_code, code, str(exc))


def _field(loc: tuple[Any, ...]) -> str | None:
    # ninja reports ("body", <parameter>, field, ...), ("query", name) or ("path", name).
    parts = list(loc[2:] if loc and loc[0] == "body" else loc[1:])
    return ".".join(str(p) for p in parts) or None


def _describe(error: dict[str, Any]) -> str:
    field = _field(tuple(error.get("loc", ())))
    if error.get("type") == "extra_forbidden":
        return f"{field}: unknown field"
    if error.get("type") == "missing":
        return f"{field}: required"
    message = str(error.get("msg", "invalid"))
    return f"{field}: {message}" if field else message


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [e for e in exc.errors if isinstance(e, dict)]
    field = _field(tuple(errors[0].get("loc", ()))) if errors else None
    message = "; ".join(_describe(e) for e in errors) or "Invalid request."
    return _error(request, 422, "validation_error", message, field)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(ObjectDoesNotExist)
def _gone(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    # Something was deleted between our lookup and our read.
    return _error(request, 404, "not_found", "Not found.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, "forbidden", str(exc) or "You cannot do this.")


@api.exception_handler(EngineError)
def _engine_refused(request: HttpRequest, exc: EngineError) -> HttpResponse:
    # The engine's subclasses name their reason (already_running, nothing_to_run).
    code = "conflict" if exc.code == EngineError.code else exc.code
    return _error(request, 409, code, str(exc))


@api.exception_handler(FeatureError)
def _feature_refused(request: HttpRequest, exc: FeatureError) -> HttpResponse:
    return _error(request, 409, "conflict", str(exc))


@api.exception_handler(TokenError)
def _token_refused(request: HttpRequest, exc: TokenError) -> HttpResponse:
    return _error(request, 422, "invalid", str(exc))


@api.exception_handler(Exception)
def _crashed(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API error on %s %s", request.method, request.path)
    return _error(request, 500, "server_error", "Something went wrong on our side; try again.")


# --- Middleware: the boundary in front of the API ------------------------------------------------


def _too_large(request: HttpRequest) -> JsonResponse | None:
    """Refuse a body over the limit from its Content-Length, before anything parses it."""
    if not request.path.startswith(API_PREFIX):
        return None
    limit = settings.RUNWAY_API_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse(error_body("bad_request", "Invalid Content-Length."), status=400)
    # Without a Content-Length (chunked), the ASGI guard (config.body_limit) counted it as it
    # came; here (WSGI, the test client) measure what the server buffered.
    size = declared
    if not size and request.method in _BODY_METHODS:
        try:
            size = len(request.body)
        except RequestDataTooBig:  # past DATA_UPLOAD_MAX_MEMORY_SIZE: certainly too large
            size = limit + 1
    if size > limit:
        return JsonResponse(
            error_body("too_large", f"Request bodies are at most {limit // 1024} KB."),
            status=413,
        )
    return None


def _as_json_error(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Errors Django answers for the API (unknown path, wrong method) in the API's format."""
    if (
        response.status_code < 400
        or not request.path.startswith(API_PREFIX)
        or response.get("Content-Type", "").startswith("application/json")
    ):
        return response
    status = response.status_code
    if status == 404:
        message = f"No API endpoint {request.method} {request.path}."
    elif status == 405:
        message = f"{request.method} is not allowed here; allowed: {response.get('Allow', '')}."
    else:
        message = response.reason_phrase
    code = _CODES.get(status, "server_error" if status >= 500 else "error")
    replaced = JsonResponse(error_body(code, message), status=status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            replaced[header] = response[header]
    return replaced


Handler = Callable[[HttpRequest], Any]


@sync_and_async_middleware
def api_boundary_middleware(get_response: Handler) -> Handler:
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            refused = _too_large(request)
            if refused is not None:
                return refused
            response: Awaitable[HttpResponseBase] = get_response(request)
            return _as_json_error(request, await response)

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        refused = _too_large(request)
        if refused is not None:
            return refused
        return _as_json_error(request, get_response(request))

    return middleware
