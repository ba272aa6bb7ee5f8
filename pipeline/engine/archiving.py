"""Archive a card and its subtree, or bring them back: the one writer, used by the board, the
card page and anything else that archives.

Chosen rule for an active run: archiving is **refused** while any card of the subtree has an
active run (waiting, awaiting approval, queued or running), with a message naming the card, so
nothing runs unseen on a card nobody can find on the board. Stop it first, then archive.
Launching an archived card is refused the same way (launching.start_card), so the two cannot
race: both lock the card row first.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from features import events
from features.actions import do_set_archived, subtree_ids
from features.models import Feature
from pipeline.engine.card_state import engine_transaction
from pipeline.engine.errors import EngineError
from pipeline.engine.locks import lock_feature
from pipeline.models import Run


class RunInProgress(EngineError):
    code = "run_in_progress"


def archive_card(feature: Feature, user: User | None) -> int:
    """Archive the card and every card below it. Returns how many cards were archived (0 when
    all already were). Raises RunInProgress when a card of the subtree has an active run."""
    return _set_archived(feature, archived=True)


def unarchive_card(feature: Feature, user: User | None) -> int:
    """Bring the card and its subtree back to the boards. Returns how many cards changed."""
    return _set_archived(feature, archived=False)


def _set_archived(feature: Feature, *, archived: bool) -> int:
    with engine_transaction():
        feature = lock_feature(feature.pk)
        ids = subtree_ids(feature)
        # Lock the subtree in id order (the card first, already held): a launch on a child
        # then either commits before us (and we refuse) or sees the card archived.
        list(Feature.objects.filter(pk__in=ids).select_for_update(of=("self",)).order_by("pk"))
        if archived:
            active = (
                Run.objects.filter(feature_id__in=ids, status__in=Run.ACTIVE_STATUSES)
                .select_related("feature")
                .order_by("feature_id")
                .first()
            )
            if active is not None:
                state = active.get_status_display().lower()
                raise RunInProgress(
                    f"“{active.feature.title}” has a run in progress ({state}): "
                    "stop it first, then archive."
                )
        changed = do_set_archived(ids, archived=archived)
        # Its columns are redrawn without (or with) the cards; `created` names the column.
        for card in Feature.objects.filter(pk__in=ids).only("pk", "workspace_id", "stage_id"):
            events.card_changed_on_commit(card, created=True)
    return changed
