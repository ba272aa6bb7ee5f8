"""A local LLM server for tests: the Anthropic Messages API (JSON and SSE streaming, tool use)
and the OpenAI chat-completions API, on 127.0.0.1, so the real SDK clients are exercised and no
test reaches the internet.

By default every request gets a valid answer made from the request itself (a document with the
sections the prompt names, a task list or a jury score through the forced tool). Tests queue
scripted replies for the next requests, one fault each, misbehaving the way real servers do:
errors with headers and odd bodies, silence before or in the middle of a stream, dropped
connections, error events inside a stream, streams cut short, answers cut off by the output
limit, missing usage, multi-line events, raw line separators in text, plain JSON bodies for
streaming requests. The server counts requests in flight, so tests can check a concurrency cap
across processes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARCH_SECTIONS = ["Overview", "Components", "Data model", "Risks"]
VALID_TASKS = {
    "tasks": [
        {"title": "Model the data", "description": "Tables and migrations.", "depends_on": []},
        {"title": "Build the API", "description": "Endpoints and errors.", "depends_on": [0]},
        {"title": "Build the UI", "description": "Pages, phone width too.", "depends_on": [1]},
    ]
}
_SECTIONS = re.compile(r"(?:sections|headings):\s*([^\n.]+)")


@dataclass
class Reply:
    """One scripted answer.

    kind: what is answered — auto | text | tool | refusal | broken_json (a tool input that is
    not JSON) | error (an HTTP error with `body`) | hang (silence before any header) | drop
    (the connection closed without an answer) | stall (silence after `after` pieces) | cut (the
    connection closed after `after` pieces) | event_error (an error event with `body` after
    `after` pieces) | plain_json (OpenAI: one JSON body for a streaming request).

    stop: the stop/finish reason to report instead of the natural one (``max_tokens``,
    ``length``). usage: False sends none (OpenAI) or nulls (Anthropic). multiline: each event's
    JSON spread over several ``data:`` lines. trickle: a stall that sends a keep-alive comment
    every 0.2 s, so no read ever times out and only a deadline on the whole call ends it.
    """

    kind: str = "auto"
    status: int = 200
    error_type: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    data: Any = None
    seconds: float = 0.0
    body: Any = None
    stop: str = ""
    usage: bool = True
    multiline: bool = False
    after: int = 1
    trickle: bool = False  # a stall that keeps sending SSE comments (keep-alives), no events


STREAM_FAULTS = ("stall", "cut", "event_error")


def error(
    status: int, error_type: str, message: str = "", *, body: Any = None, **headers: str
) -> Reply:
    """An HTTP error. `body` replaces the protocol's usual error JSON (a server's own shape)."""
    return Reply(
        kind="error",
        status=status,
        error_type=error_type,
        message=message or error_type,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        body=body,
    )


def hang(seconds: float = 30.0) -> Reply:
    return Reply(kind="hang", seconds=seconds)


def tool(data: Any, **options: Any) -> Reply:
    return Reply(kind="tool", data=data, **options)


def text(body: str, **options: Any) -> Reply:
    return Reply(kind="text", text=body, **options)


def fault(kind: str, **options: Any) -> Reply:
    """A stream fault (stall, cut, event_error), a drop, or an answer with odd options."""
    return Reply(kind=kind, **options)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeLLM:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.usage = {
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        # Every answer waits this long first (to overlap requests in concurrency tests).
        self.hold_seconds = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # Poll for shutdown every 50 ms (serve_forever's default is 0.5 s, paid by every test).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self.script.popleft() if self.script else Reply()

    def entered(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def left(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, seconds: float) -> None:
        # An Event wait, so stop() frees hung handlers at once.
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeLLM

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        fake.entered(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        try:
            if fake.hold_seconds:
                fake.wait(fake.hold_seconds)
            reply = fake.next_reply()
            if reply.kind == "hang":
                fake.wait(reply.seconds)
                return
            if reply.kind == "drop":
                self.close_connection = True
                return
            if self.path.endswith("/v1/messages"):
                self._anthropic(body, reply)
            elif self.path.endswith("/chat/completions"):
                self._openai(body, reply)
            else:
                self._json(404, {"error": {"type": "not_found_error", "message": self.path}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer
        finally:
            fake.left()

    # --- plumbing ----------------------------------------------------------------------------

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        try:
            raw = json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate: sent escaped, as "\ud800"
            raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _event(self, name: str | None, payload: Any, multiline: bool = False) -> None:
        # Raw characters, as real servers send them (U+2028 and U+0085 included).
        if isinstance(payload, str):
            lines = [payload]
        elif multiline:  # one event over several data: lines, as the SSE spec allows
            lines = json.dumps(payload, ensure_ascii=False, indent=1).split("\n")
        else:
            lines = [json.dumps(payload, ensure_ascii=False)]
        chunk = (f"event: {name}\n" if name else "") + "".join(f"data: {x}\n" for x in lines)
        self.wfile.write((chunk + "\n").encode())
        self.wfile.flush()

    def _emit(
        self,
        events: list[tuple[str | None, Any]],
        reply: Reply,
        error_event: tuple[str | None, Any],
    ) -> None:
        """Send the stream's events, with the reply's fault after `reply.after` of them."""
        self._sse_start()
        for index, (name, payload) in enumerate(events):
            if reply.kind in STREAM_FAULTS and index == reply.after:
                if reply.kind == "stall" and reply.trickle:
                    self._trickle(reply.seconds)
                elif reply.kind == "stall":
                    self.server_fake.wait(reply.seconds)
                elif reply.kind == "event_error":
                    self._event(*error_event)
                self.close_connection = True
                return
            self._event(name, payload, reply.multiline)

    def _trickle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.server_fake.stopping:
            self.wfile.write(b": keep-alive\n\n")
            self.wfile.flush()
            self.server_fake.wait(0.2)

    # --- Anthropic ---------------------------------------------------------------------------

    def _anthropic(self, body: dict[str, Any], reply: Reply) -> None:
        if reply.kind == "error":
            default = {
                "type": "error",
                "error": {"type": reply.error_type, "message": reply.message},
            }
            self._json(reply.status, default if reply.body is None else reply.body, reply.headers)
            return
        tools = body.get("tools") or []
        tool_name = tools[0]["name"] if tools else ""
        stop_reason = "end_turn"
        blocks: list[dict[str, Any]]
        if reply.kind == "refusal":
            blocks, stop_reason = [{"type": "text", "text": "I can't help with that."}], "refusal"
        elif reply.kind == "text" or (reply.kind != "tool" and not tools):
            blocks = [{"type": "text", "text": reply.text or _document(_prompt_of(body))}]
        elif reply.kind == "broken_json":
            blocks, stop_reason = [{"type": "tool_use", "raw": reply.text}], "tool_use"
        else:
            data = reply.data if reply.kind == "tool" else _valid_for(tool_name)
            blocks, stop_reason = [{"type": "tool_use", "input": data}], "tool_use"
        stop_reason = reply.stop or stop_reason
        usage: dict[str, Any] = dict(self.server_fake.usage)
        if not reply.usage:
            usage = dict.fromkeys(usage)
        if not body.get("stream"):
            content = [_final_block(b, tool_name, i) for i, b in enumerate(blocks)]
            self._json(200, _message(body, content, stop_reason, usage))
            return
        start_usage = {**usage, "output_tokens": 1 if reply.usage else None}
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {"type": "message_start", "message": _message(body, [], None, start_usage)},
            )
        ]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
            else:
                start = {"type": "tool_use", "id": f"toolu_{index}", "name": tool_name, "input": {}}
                raw = block.get("raw") or json.dumps(block["input"], ensure_ascii=False)
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(raw)]
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            events.extend(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                for d in deltas
            )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        failure = reply.body or {
            "type": "error",
            "error": {"type": reply.error_type or "overloaded_error", "message": reply.message},
        }
        self._emit(events, reply, ("error", failure))

    # --- OpenAI chat completions -------------------------------------------------------------

    def _openai(self, body: dict[str, Any], reply: Reply) -> None:
        if reply.kind == "error":
            default = {"error": {"type": reply.error_type, "message": reply.message, "code": None}}
            self._json(reply.status, default if reply.body is None else reply.body, reply.headers)
            return
        prompt = _prompt_of(body)
        if reply.kind in ("text", "broken_json"):
            content = reply.text
        elif reply.kind == "tool":
            content = json.dumps(reply.data, ensure_ascii=False)
        elif body.get("response_format", {}).get("type") == "json_object":
            wanted = "submit_score" if '"report"' in prompt else "submit_tasks"
            content = json.dumps(_valid_for(wanted))
        elif reply.text:
            content = reply.text
        else:
            content = _document(prompt)
        finish = reply.stop or ("content_filter" if reply.kind == "refusal" else "stop")
        usage = self.server_fake.usage
        counted = {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        }
        if not body.get("stream") or reply.kind == "plain_json":
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
            completion: dict[str, Any] = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [choice],
            }
            if reply.usage:
                completion["usage"] = counted
            self._json(200, completion)
            return
        events: list[tuple[str | None, Any]] = [
            (None, {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
            for p in _pieces(content)
        ]
        events.append((None, {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        if reply.usage and body.get("stream_options", {}).get("include_usage"):
            events.append((None, {"choices": [], "usage": counted}))
        events.append((None, "[DONE]"))
        failure = reply.body or {"error": {"message": reply.message, "type": reply.error_type}}
        self._emit(events, reply, (None, failure))


def _prompt_of(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
    return "\n".join(parts)


def _document(prompt: str) -> str:
    found = _SECTIONS.search(prompt)
    sections = [s.strip() for s in found.group(1).split(",")] if found else ["Summary"]
    return "# Answer\n\n" + "\n".join(
        f"## {s}\n\n{'APPROVED. ' if s == 'Verdict' else ''}What matters for {s.lower()}.\n"
        for s in sections
    )


def _valid_for(tool_name: str) -> dict[str, Any]:
    if tool_name == "submit_score":
        report = "## Jury\n\nFive users.\n\n## Score\n\n**81 / 100**\n\n## Concerns\n\nPrice.\n"
        return {"score": 81, "report": report}
    return VALID_TASKS


def _final_block(block: dict[str, Any], tool_name: str, index: int) -> dict[str, Any]:
    if block["type"] == "text":
        return block
    return {"type": "tool_use", "id": f"toolu_{index}", "name": tool_name, "input": block["input"]}


def _message(
    body: dict[str, Any], content: list[Any], stop_reason: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _pieces(value: str, size: int = 40) -> Iterator[str]:
    for start in range(0, len(value), size):
        yield value[start : start + size]


def serve(monkeypatch: Any) -> Iterator[FakeLLM]:
    """For a fixture: a started server that both SDK clients point at, and clean slots."""
    from django.conf import settings

    from pipeline.limits import KEY_PREFIX, _redis

    fake = FakeLLM().start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
    client = _redis(settings.REDIS_URL)
    for key in client.scan_iter(f"{KEY_PREFIX}:*"):
        client.delete(key)
    try:
        yield fake
    finally:
        fake.stop()


def use_provider(workspace: Any, provider: str = "anthropic", model: str = "claude-test") -> None:
    """Point a workspace's new runs at a provider (what an operator does in the admin)."""
    from features.models import Workspace

    Workspace.objects.filter(pk=workspace.pk).update(default_provider=provider, default_model=model)
    workspace.refresh_from_db()
