"""Line diffs between two artifact versions, as data: the template escapes and marks each line."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

LineKind = Literal["hunk", "same", "add", "del"]
PREFIX: dict[LineKind, str] = {"hunk": "", "same": " ", "add": "+", "del": "-"}


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind
    text: str

    @property
    def prefix(self) -> str:
        return PREFIX[self.kind]


@dataclass
class LineDiff:
    lines: list[DiffLine] = field(default_factory=list)
    added: int = 0
    removed: int = 0

    @property
    def identical(self) -> bool:
        return not self.added and not self.removed


def line_diff(old: str, new: str, *, context: int = 3) -> LineDiff:
    """Unified-style hunks: changed lines with `context` unchanged lines around them."""
    a, b = old.splitlines(), new.splitlines()
    # autojunk would treat lines common in long documents (blank lines, "---") as noise and
    # report whole sections as rewritten; artifacts are small enough to compare exactly.
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    diff = LineDiff()
    for group in matcher.get_grouped_opcodes(context):
        (_, old_start, _, new_start, _), (_, _, old_end, _, new_end) = group[0], group[-1]
        header = (
            f"@@ -{old_start + 1},{old_end - old_start} +{new_start + 1},{new_end - new_start} @@"
        )
        diff.lines.append(DiffLine("hunk", header))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                diff.lines.extend(DiffLine("same", line) for line in a[i1:i2])
                continue
            if tag in ("replace", "delete"):
                diff.lines.extend(DiffLine("del", line) for line in a[i1:i2])
                diff.removed += i2 - i1
            if tag in ("replace", "insert"):
                diff.lines.extend(DiffLine("add", line) for line in b[j1:j2])
                diff.added += j2 - j1
    return diff
