"""Artifact markdown to HTML that is safe to put in a page.

Artifacts come from LLMs and from whatever text a card's description fed them, so they are
untrusted: Markdown passes raw HTML through, and nh3 then keeps only a small allow-list.
"""

from __future__ import annotations

import re

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "b", "i", "del", "ins", "sup", "sub", "abbr", "code", "pre", "blockquote",
    "ul", "ol", "li", "dl", "dt", "dd", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
# No images (tracking pixels, huge layouts), no id (an artifact must not clobber the page's
# element ids, which out-of-band swaps target), no class or style (the page's CSS stays ours).
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
}
ALIGN = {"align": {"left", "center", "right"}}
URL_SCHEMES = {"http", "https", "mailto"}
# A document sits under the page's own headings: its "# Title" is an <h3>, never a second <h1>.
HEADING_SHIFT = 2
_HEADING = re.compile(r"<(/?)h([1-6])>")


def _demote(match: re.Match[str]) -> str:
    return f"<{match.group(1)}h{min(6, int(match.group(2)) + HEADING_SHIFT)}>"


def render_markdown(text: str) -> SafeString:
    html = md.markdown(
        text,
        extensions=["extra", "sane_lists"],
        # The align attribute can be allow-listed by value; a style attribute could not.
        extension_configs={"extra": {"tables": {"use_align_attribute": True}}},
        output_format="html",
    )
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values={"th": ALIGN, "td": ALIGN},
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return mark_safe(_HEADING.sub(_demote, cleaned))  # noqa: S308 - nh3 has just sanitised it
