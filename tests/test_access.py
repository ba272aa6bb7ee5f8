"""features.access: outsiders see nothing (404), members without the role are refused (403)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from features.access import get_feature, get_workspace, workspaces_for
from features.models import Membership, Workspace
from tests.factories import FeatureFactory, UserFactory


@pytest.fixture
def feature(story):
    return FeatureFactory.create(workspace=story.workspace)


def test_it_hides_a_workspace_from_an_outsider(story):
    with pytest.raises(Http404):
        get_workspace(story.outsider, story.workspace.slug)


def test_it_hides_a_workspace_from_an_anonymous_user(story):
    with pytest.raises(Http404):
        get_workspace(AnonymousUser(), story.workspace.slug)


def test_it_answers_404_for_a_workspace_that_does_not_exist(story):
    with pytest.raises(Http404):
        get_workspace(story.owner, "no-such-workspace")


def test_it_hides_a_feature_from_an_outsider(story, feature):
    with pytest.raises(Http404):
        get_feature(story.outsider, feature.pk)


def test_it_hides_a_feature_from_an_anonymous_user(story, feature):
    with pytest.raises(Http404):
        get_feature(AnonymousUser(), feature.pk)


def test_it_lets_a_viewer_read(story, feature):
    workspace, membership = get_workspace(story.viewer, story.workspace.slug)
    found, _ = get_feature(story.viewer, feature.pk)

    assert workspace == story.workspace
    assert membership.role == Membership.Role.VIEWER
    assert found == feature


def test_it_refuses_writes_to_a_viewer(story, feature):
    with pytest.raises(PermissionDenied):
        get_workspace(story.viewer, story.workspace.slug, write=True)
    with pytest.raises(PermissionDenied):
        get_feature(story.viewer, feature.pk, write=True)


def test_it_lets_a_member_write(story, feature):
    workspace, _ = get_workspace(story.teammate, story.workspace.slug, write=True)
    found, membership = get_feature(story.teammate, feature.pk, write=True)

    assert workspace == story.workspace
    assert found == feature
    assert membership.role == Membership.Role.MEMBER


def test_it_refuses_admin_actions_to_a_member(story, feature):
    with pytest.raises(PermissionDenied):
        get_workspace(story.teammate, story.workspace.slug, admin=True)
    with pytest.raises(PermissionDenied):
        get_feature(story.teammate, feature.pk, admin=True)


def test_it_refuses_admin_actions_to_a_viewer(story):
    with pytest.raises(PermissionDenied):
        get_workspace(story.viewer, story.workspace.slug, admin=True)


def test_it_lets_an_admin_do_admin_actions(story, feature):
    admin = UserFactory.create(username="ada")
    Membership.objects.create(workspace=story.workspace, user=admin, role=Membership.Role.ADMIN)

    _, membership = get_workspace(admin, story.workspace.slug, write=True, admin=True)
    found, _ = get_feature(admin, feature.pk, write=True, admin=True)

    assert membership.role == Membership.Role.ADMIN
    assert found == feature


def test_it_lets_the_owner_do_everything(story, feature):
    workspace, membership = get_workspace(story.owner, story.workspace.slug, write=True, admin=True)
    found, _ = get_feature(story.owner, feature.pk, write=True, admin=True)

    assert workspace == story.workspace
    assert membership.role == Membership.Role.OWNER
    assert found == feature


def test_it_gives_the_owner_no_access_to_another_workspace(story):
    with pytest.raises(Http404):
        get_workspace(story.owner, "charlies-team")


def test_it_lists_only_the_users_workspaces(story):
    assert list(workspaces_for(story.owner)) == [story.workspace]
    assert list(workspaces_for(story.viewer)) == [story.workspace]
    assert list(workspaces_for(story.outsider)) == [Workspace.objects.get(slug="charlies-team")]


def test_it_lists_each_workspace_once_however_many_members_it_has(story):
    # The other memberships of the same workspace must not multiply the row.
    assert workspaces_for(story.teammate).count() == 1


def test_it_lists_no_workspaces_for_an_anonymous_user(story):
    assert list(workspaces_for(AnonymousUser())) == []
