"""What a webhook's body looks like: Runway's JSON event, or a Slack incoming-webhook message."""

from __future__ import annotations

import json
from typing import Any

from notifications.models import Event, Webhook

_BUTTONS = (("accept", "Accept", "primary"), ("reject", "Reject", "danger"), ("start", "Start", ""))


def body_for(webhook: Webhook, event: Event) -> bytes:
    """The bytes sent (and signed) for `event` in the webhook's format."""
    if webhook.format == Webhook.Format.SLACK:
        return _compact(slack_message(event.payload))
    return _compact(event.payload)


def _compact(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters
    # (api.slack.com/reference/surfaces/formatting).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """`text` (notifications, old clients) plus Block Kit blocks: the text with a link to the
    card, and link buttons for the decisions the event waits for (their pages ask the clicker
    to sign in, so a channel's link acts as whoever clicks it, with their role)."""
    links = payload.get("links", {})
    text = _escape(payload["text"])
    card = links.get("card")
    section = f"*{_escape(payload['workspace']['name'])}* · {text}"
    if card:
        section += f"\n<{card}|Open the card>"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section[:3000]}}
    ]
    buttons = []
    for key, label, style in _BUTTONS:
        if key in links:
            button: dict[str, Any] = {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "url": links[key],
                "action_id": key,
            }
            if style:
                button["style"] = style
            buttons.append(button)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{payload['type']} · {payload['id']}"}],
        }
    )
    return {"text": payload["text"], "blocks": blocks}
