"""render_markdown: artifacts are untrusted text, so only a small allow-list of HTML survives."""

from __future__ import annotations

from django.utils.safestring import SafeString

from features.markdown import render_markdown


def test_it_renders_common_markdown():
    html = render_markdown(
        "## Goals\n\n- **fast**\n- `code`\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n3. three\n4. four\n"
    )

    assert isinstance(html, SafeString)
    assert "<h4>Goals</h4>" in html  # demoted under the page's own headings
    assert "<li><strong>fast</strong></li>" in html
    assert "<code>code</code>" in html
    assert '<th align="left">a</th>' in html
    assert '<td align="right">2</td>' in html
    assert '<ol start="3">' in html


def test_it_removes_scripts_and_their_content():
    html = render_markdown("Hi\n\n<script>alert(1)</script>\n\n<style>body{}</style>")

    assert "<script" not in html
    assert "alert(1)" not in html
    assert "<style" not in html


def test_it_removes_images_and_event_handlers():
    html = render_markdown('<img src=x onerror=alert(1)> <b onclick="steal()">bold</b>')

    assert "<img" not in html
    assert "onerror" not in html
    assert "onclick" not in html
    assert "<b>bold</b>" in html


def test_it_drops_javascript_urls_and_marks_links_noopener():
    html = render_markdown(
        "[x](javascript:alert(1)) [y](JaVaScRiPt:alert(1)) [ok](https://example.com)"
    )

    assert "javascript" not in html.lower()
    assert '<a rel="noopener noreferrer">x</a>' in html
    assert '<a href="https://example.com" rel="noopener noreferrer">ok</a>' in html


def test_it_does_not_let_an_artifact_set_ids_or_styles():
    # An id could hijack the page's out-of-band swap targets (log-lines-<run>).
    html = render_markdown(
        '<p id="log-lines-1" style="position:fixed" class="danger">text</p>\n\n'
        "## Heading {: #log-lines-2 }\n"
    )

    assert "id=" not in html
    assert "style=" not in html
    assert "class=" not in html
    assert "text" in html


def test_it_escapes_html_inside_code_blocks():
    html = render_markdown("```\n<b>not bold</b>\n```")

    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_it_never_gives_a_page_a_second_h1():
    html = render_markdown("# Title\n\n###### Deep")
    assert "<h1>" not in html
    assert "<h3>Title</h3>" in html
    assert "<h6>Deep</h6>" in html
