from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.api import api
from features.views import profile
from features.views.login import LoginForm

urlpatterns = [
    # Accounts
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/tokens", profile.tokens, name="tokens"),
    path("profile/tokens/<int:pk>/revoke", profile.revoke_token, name="revoke_token"),
    # Operators
    path("admin/", admin.site.urls),
    # JSON API (/api/docs, /api/openapi.json)
    path("api/", api.urls),
    # Product
    path("", include("pipeline.urls")),
    path("", include("skills.urls")),
    path("", include("pipeline.card_urls")),
    path("", include("notifications.urls")),
    path("", include("features.people_urls")),
]
