"""Every workspace fixture tells the same story: an owner, a teammate and an outsider."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client

from features.models import Membership, Workspace
from tests.factories import UserFactory, WorkspaceFactory, add_member


@dataclass
class Story:
    workspace: Workspace
    owner: User
    teammate: User
    viewer: User
    outsider: User

    def client_for(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client


def make_story(template: str = "quick") -> Story:
    owner = UserFactory(username="alice")
    teammate = UserFactory(username="bob")
    viewer = UserFactory(username="vera")
    outsider = UserFactory(username="charlie")
    workspace = WorkspaceFactory(name="Alice's team", slug="alices-team", template=template,
                                 owner=owner)
    add_member(workspace, teammate, Membership.Role.MEMBER)
    add_member(workspace, viewer, Membership.Role.VIEWER)
    # The outsider has a workspace of their own, so "not found" is about access, not emptiness.
    WorkspaceFactory(name="Charlie's team", slug="charlies-team", template=template,
                     owner=outsider)
    return Story(workspace, owner, teammate, viewer, outsider)


@pytest.fixture
def story(db: None) -> Story:
    return make_story()


@pytest.fixture
def delivery_story(db: None) -> Story:
    return make_story("delivery")


@pytest.fixture
def product_story(db: None) -> Story:
    return make_story("product")
