"""URLs of workspaces and their people: new workspace, members, invitations, audit log."""

from __future__ import annotations

from django.urls import path

from features.views import audit_log, members

app_name = "people"

urlpatterns = [
    path("workspaces/new", members.new_workspace, name="new_workspace"),
    path("w/<slug:slug>/members/", members.members_page, name="members"),
    path("w/<slug:slug>/members/invite", members.invite, name="invite"),
    path("w/<slug:slug>/members/<int:pk>/role", members.change_role, name="change_role"),
    path("w/<slug:slug>/members/<int:pk>/remove", members.remove_member, name="remove"),
    path(
        "w/<slug:slug>/invitations/<int:pk>/revoke",
        members.revoke_invitation,
        name="revoke_invitation",
    ),
    path("invitations/<str:token>", members.accept, name="accept"),
    path("w/<slug:slug>/audit/", audit_log.audit_page, name="audit"),
    path("w/<slug:slug>/audit.csv", audit_log.audit_csv, name="audit_csv"),
]
