"""Text from models and servers made storable before it reaches the database.

PostgreSQL refuses a NUL character in ``text`` and ``\\u0000`` in ``jsonb`` (SQLite takes them),
and UTF-8 cannot encode a lone surrogate (``"\\ud800"``, which ``json.loads`` happily returns).
An LLM or a server can send either, in an answer or in an error message; one such character
used to fail the write that records the outcome, leaving the run ``running``. Everything the
engine stores that came from outside goes through here first.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
# NUL, and the UTF-16 surrogates that only occur alone in a Python str (a valid pair is one
# code point already).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """`value` with NUL and lone surrogates replaced by U+FFFD; everything else kept as is."""
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def storable(value: Any) -> Any:
    """`value` (a JSON-like tree: dicts, lists, strings, numbers) with every string, keys too,
    made storable. Other values pass through unchanged."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def clip(value: str, limit: int) -> str:
    """Storable text cut to at most `limit` characters (for notes and one-line fields)."""
    return storable_text(value)[:limit]
