"""/profile/tokens: a person's API tokens. A new token's secret is shown once, in the response
to the POST that created it, and never stored."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from features.models import ApiToken
from features.tokens import do_create_api_token, do_revoke_api_token
from features.views.common import HtmxHttpRequest


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, help_text="What uses it, e.g. “release script”."
    )


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HtmxHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST if request.method == "POST" else None)
    created = secret = None
    if form.is_bound and form.is_valid():
        created, secret = do_create_api_token(request.user, form.cleaned_data["name"])
        form = TokenForm()
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        "created": created,
        "secret": secret,
    }
    response = render(request, "features/tokens.html", context, status=422 if form.errors else 200)
    add_never_cache_headers(response)  # the page may hold a secret: no cache keeps a copy
    return response


@login_required
@require_POST
def revoke_token(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    do_revoke_api_token(token)
    return redirect("tokens")
