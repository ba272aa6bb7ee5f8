"""The one-click decision page: GET shows what the link would do, POST does it once.

Every check runs again at POST, in the transaction that records the decision: the signature
and age (links.read), the nonce never used before (UsedLink, unique), the person still active
and still a member who may decide (owner, admin or member — not a viewer), and the run still
waiting for this decision. The decision itself goes through the engine's own commands
(accept_run / reject_run / start_run) as that person, so the run's history names them, and
the engine's own audit entry (``run.decision``, with the decision) says source ``email``, in the
same transaction.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from audit.context import acting_from
from features.models import Membership
from features.views.common import HtmxHttpRequest
from notifications.links import Claim, LinkProblem, read
from notifications.models import UsedLink
from pipeline import engine
from pipeline.models import Run

_VERBS = {"accept": "Accept", "reject": "Reject", "start": "Start"}
MAX_REASON = 500


class Refusal(Exception):
    """The link cannot act now: `message` for its holder, `status` the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _person(claim: Claim, request: HtmxHttpRequest) -> User | None:
    """Who decides: the person an email link names, or whoever signed in (a Slack link)."""
    if claim.user_id is None:
        return request.user if request.user.is_authenticated else None
    return User.objects.filter(pk=claim.user_id).first()


def _check(claim: Claim, user: User) -> Run:
    """The run this link may decide now, or Refusal saying why not."""
    if not user.is_active:
        raise Refusal("This link's account is deactivated.", 403)
    used = UsedLink.objects.filter(nonce=claim.nonce).first()
    if used is not None:
        raise Refusal(
            f"This link was already used on {used.used_at:%Y-%m-%d %H:%M} UTC; "
            "a link works only once.",
            410,
        )
    run = (
        Run.objects.select_related("feature", "stage", "workspace").filter(pk=claim.run_id).first()
    )
    membership = (
        Membership.objects.filter(user=user, workspace_id=run.workspace_id).first()
        if run is not None
        else None
    )
    if run is None or membership is None:
        raise Refusal("You are no longer a member of this run's workspace.", 403)
    if not membership.can_write:
        raise Refusal(
            f"Your role in {run.workspace.name} is now {membership.get_role_display().lower()}: "
            "viewers cannot decide. Ask an owner or admin.",
            403,
        )
    waiting = (
        run.status == Run.Status.AWAITING_APPROVAL
        if claim.action == "start"
        else run.status == Run.Status.SUCCEEDED and run.decision == Run.Decision.PENDING
    )
    if not waiting:
        raise Refusal(
            f"Nothing to {claim.action}: run #{run.pk} is {run.get_status_display().lower()}"
            + (f" ({run.get_decision_display().lower()})" if run.decision != "auto" else "")
            + ". Someone may have decided already.",
            409,
        )
    return run


def _act(claim: Claim, user: User, reason: str) -> Run:
    with transaction.atomic():
        run = _check(claim, user)
        try:
            with transaction.atomic():
                UsedLink.objects.create(
                    nonce=claim.nonce, user=user, run_id=run.pk, action=claim.action
                )
        except IntegrityError:
            raise Refusal("This link was already used; a link works only once.", 410) from None
        try:
            # The engine writes the audit entry (one per decision, whatever the door); this
            # door only says it is the email link.
            with acting_from("email"):
                if claim.action == "start":
                    engine.start_run(run, user)
                elif claim.action == "accept":
                    engine.accept_run(run, user)
                else:
                    engine.reject_run(run, user, reason)
        except engine.EngineError as exc:
            raise Refusal(str(exc), 409) from None
    return run


@require_http_methods(["GET", "POST"])
def decide_page(request: HtmxHttpRequest, token: str) -> HttpResponse:
    context: dict[str, object] = {"token": token}
    status = 200
    try:
        claim = read(token)
        context["verb"] = _VERBS[claim.action]
        context["action"] = claim.action
        user = _person(claim, request)
        if user is None:
            if claim.user_id is None:
                return redirect_to_login(request.get_full_path())
            raise Refusal("This link's account no longer exists.", 403)
        context["person"] = user
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()[:MAX_REASON]
            context["run"] = _act(claim, user, reason)
            context["done"] = True
        else:
            context["run"] = _check(claim, user)
    except LinkProblem as exc:
        context["problem"], status = str(exc), 400 if "expired" not in str(exc) else 410
    except Refusal as exc:
        context["problem"], status = exc.message, exc.status
    response = render(request, "notifications/decide.html", context, status=status)
    add_never_cache_headers(response)
    return response
