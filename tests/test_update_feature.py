"""do_update_feature: text edits under an optimistic lock; a stale version is refused."""

from __future__ import annotations

import pytest

from features.actions import FeatureError, do_create_feature, do_update_feature
from features.models import Feature


@pytest.fixture
def card(story) -> Feature:
    return do_create_feature(
        story.workspace, title="Checkout", user=story.owner, description="Pay for a cart."
    )


def test_it_saves_the_title_and_description_and_bumps_the_version(card):
    updated = do_update_feature(
        card, expected_version=1, title="  One-page checkout ", description="Faster."
    )

    assert updated.version == 2
    stored = Feature.objects.get(pk=card.pk)
    assert stored.title == "One-page checkout"
    assert stored.description == "Faster."
    assert stored.version == 2


def test_it_leaves_fields_it_was_not_given(card):
    do_update_feature(card, expected_version=1, description="Only this.")

    stored = Feature.objects.get(pk=card.pk)
    assert stored.title == "Checkout"
    assert stored.description == "Only this."


def test_it_refuses_a_stale_version(card):
    # Someone else saved first: the card is at version 2 now.
    do_update_feature(Feature.objects.get(pk=card.pk), expected_version=1, title="Theirs")

    with pytest.raises(FeatureError, match="Someone else"):
        do_update_feature(card, expected_version=1, title="Mine")

    stored = Feature.objects.get(pk=card.pk)
    assert stored.title == "Theirs"
    assert stored.version == 2


def test_it_accepts_the_current_version_after_a_reload(card):
    do_update_feature(card, expected_version=1, title="Second")

    do_update_feature(card, expected_version=card.version, title="Third")

    assert Feature.objects.get(pk=card.pk).title == "Third"
    assert Feature.objects.get(pk=card.pk).version == 3


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_it_refuses_a_bad_title(card, title):
    with pytest.raises(FeatureError, match="title"):
        do_update_feature(card, expected_version=1, title=title)

    stored = Feature.objects.get(pk=card.pk)
    assert stored.title == "Checkout"
    assert stored.version == 1
