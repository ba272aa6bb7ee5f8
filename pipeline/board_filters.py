"""The boards' search and filters, read from the URL's query string (so a reload or a shared
link shows the same board) and applied to the card query.

An unknown or malformed value means "no filter" for that field, never an error: the query
string is typed by people and pasted around.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from urllib.parse import urlencode

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict

from features.models import Feature, Stage
from pipeline.models import Run

CARD_REF = re.compile(r"^#?(\d{1,18})$")
MAX_QUERY = 200


def clean_query(text: str) -> str:
    """Search text as typed, spaces collapsed and capped; a NUL (which PostgreSQL refuses in a
    string) dropped rather than turned into an error."""
    return " ".join(text.replace("\x00", "").split())[:MAX_QUERY]


@dataclass(frozen=True)
class BoardFilters:
    q: str = ""  # title or description contains it; "#12" (or "12") is card 12
    kind: str = ""
    status: str = ""
    stage: str = ""  # a stage key
    parent: int | None = None
    blocked: bool = False
    failed: bool = False  # has a failed run
    archived: bool = False  # show the archived cards instead of the live ones
    group: str = ""  # "parent": the work board in swimlanes by parent card

    @classmethod
    def from_query(cls, params: QueryDict, stages: list[Stage]) -> BoardFilters:
        kind = params.get("kind", "")
        status = params.get("status", "")
        stage = params.get("stage", "")
        parent = params.get("parent", "").lstrip("#")
        return cls(
            q=clean_query(params.get("q", "")),
            kind=kind if kind in Feature.Kind.values else "",
            status=status if status in Feature.Status.values else "",
            stage=stage if any(s.key == stage for s in stages) else "",
            parent=int(parent) if parent.isdigit() and len(parent) < 19 else None,
            blocked=params.get("blocked") == "1",
            failed=params.get("failed") == "1",
            archived=params.get("archived") == "1",
            group="parent" if params.get("group") == "parent" else "",
        )

    @property
    def narrows(self) -> bool:
        """Whether some cards are hidden by the filters (grouping hides none)."""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "group")

    @property
    def active(self) -> bool:
        return self.narrows or bool(self.group)

    def query_string(self) -> str:
        """The filters as a query string ("" when none), for links that keep them."""
        pairs: list[tuple[str, str]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is True:
                pairs.append((f.name, "1"))
            elif value not in (None, "", False):
                pairs.append((f.name, str(value)))
        return urlencode(pairs)

    def apply(self, cards: QuerySet[Feature]) -> QuerySet[Feature]:
        cards = cards.filter(archived_at__isnull=not self.archived)
        if self.q:
            ref = CARD_REF.match(self.q)
            text = Q(title__icontains=self.q) | Q(description__icontains=self.q)
            cards = cards.filter(text | Q(pk=int(ref.group(1))) if ref else text)
        if self.kind:
            cards = cards.filter(kind=self.kind)
        if self.status:
            cards = cards.filter(status=self.status)
        if self.stage:
            cards = cards.filter(stage__key=self.stage)
        if self.parent is not None:
            cards = cards.filter(parent_id=self.parent)
        if self.blocked:
            cards = cards.filter(status=Feature.Status.BLOCKED)
        if self.failed:
            cards = cards.filter(
                Exists(Run.objects.filter(feature=OuterRef("pk"), status=Run.Status.FAILED))
            )
        return cards
