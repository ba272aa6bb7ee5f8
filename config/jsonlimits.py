"""JSON from outside, parsed with a nesting limit.

Python's json module recurses once per level: a few thousand "[" in a 64 KB body raise
RecursionError, which no caller expects, and a merely deep value that parses still breaks
whatever walks it later (templates, validation, the database's JSON functions). Every door
that reads JSON from a person or a file (the API, recipe forms, skill bundles, the CLI) uses
this instead of json.loads.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def depth_of(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings do not
    count). Works on malformed text too: it only counts."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_limited(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads, refusing text nested deeper than `max_depth` levels.

    Raises ValueError (json.JSONDecodeError for malformed text) with a message for people.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("JSON must be UTF-8 text.") from None
    if depth_of(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels is not accepted.")
    try:
        return json.loads(text)
    except RecursionError:  # belt and braces: the count above should make this impossible
        raise ValueError(f"JSON nested deeper than {max_depth} levels is not accepted.") from None
