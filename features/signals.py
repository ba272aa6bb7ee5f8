"""Access changes reach open sockets whatever path made them (pages, admin, API, shell).

Signals only publish: the socket itself decides, from the database, whether it may stay open
(pipeline.consumers.live). Log streams (SSE) check their access on their own polls.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from features import events
from features.models import Membership


@receiver(post_save, sender=Membership, dispatch_uid="membership_saved_access")
def _membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    if not created:  # a role change; a new membership opens new sockets, not old ones
        events.access_changed_on_commit(instance.user_id)


@receiver(post_delete, sender=Membership, dispatch_uid="membership_deleted_access")
def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    events.access_changed_on_commit(instance.user_id)


@receiver(user_logged_out, dispatch_uid="logged_out_access")
def _logged_out(sender: Any, user: Any, request: Any = None, **kwargs: Any) -> None:
    if user is not None:
        # Sent before the session is flushed: name it, so its sockets close without racing
        # the flush.
        session = getattr(request, "session", None)
        events.access_changed_on_commit(
            user.pk, ended_session=getattr(session, "session_key", None)
        )
