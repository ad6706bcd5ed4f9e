"""A throwaway server speaking the OpenAI Chat Completions API on loopback, so the real
`openai` SDK is exercised over real HTTP (tests of `threadline.agent.openai_lm`).

Each POST to `/v1/chat/completions` pops the next scripted step and is kept, with its
headers, for inspection:

- a dict: the assistant message to return (`text(...)`, `tool_call(...)`);
- an int: an HTTP error with that status (500, 503, 429 …);
- `Slow(seconds, then)`: wait, then answer with `then` (for timeouts).

An empty script answers 500, so a test that makes more requests than it scripted fails
loudly instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Slow:
    seconds: float
    then: dict[str, Any] | int


Step = dict[str, Any] | int | Slow


@dataclass
class ChatCompletionsServer:
    base_url: str
    script: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, request: dict[str, Any], headers: dict[str, str]) -> Step:
        with self.lock:
            self.requests.append(request)
            self.headers.append(headers)
            return self.script.pop(0) if self.script else 500


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def text(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def _completion(message: dict[str, Any], model: str) -> bytes:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


@contextmanager
def chat_completions_server() -> Iterator[ChatCompletionsServer]:
    state = ChatCompletionsServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length))
            step = state.next_step(request, {k.lower(): v for k, v in self.headers.items()})
            if isinstance(step, Slow):
                time.sleep(step.seconds)
                step = step.then
            if self.path.rstrip("/") != "/v1/chat/completions":
                step = 404
            if isinstance(step, int):
                body = json.dumps({"error": {"message": "scripted failure"}}).encode()
                self.send_response(step)
            else:
                body = _completion(step, str(request.get("model", "")))
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # may fail: a client that timed out has left

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
