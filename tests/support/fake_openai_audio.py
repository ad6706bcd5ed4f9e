"""A tiny OpenAI-compatible audio server on 127.0.0.1 for unit-testing the OpenAI adapters.

It is not a speech provider: it returns the transcript it was told to, and a tone whose
length follows the text. It records every request so tests can check what the adapter sent.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeAudioAPI:
    transcript: str = "water damage"
    avg_logprob: float | None = -0.1
    fail_with: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""


def _tone(seconds: float, rate: int = 24_000) -> bytes:
    n = int(seconds * rate)
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n)
    )


def _handler(api: FakeAudioAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record: dict[str, Any] = {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
            }
            api.requests.append(record)
            if api.fail_with is not None:
                self._send(api.fail_with, "application/json", b'{"error":{"message":"boom"}}')
                return
            if self.path.endswith("/audio/transcriptions"):
                riff = body.find(b"RIFF")
                record["wav_rate"] = struct.unpack("<I", body[riff + 24 : riff + 28])[0]
                for name in ("model", "prompt", "response_format"):
                    match = re.search(rb'name="%s"\r\n\r\n(.*?)\r\n--' % name.encode(), body, re.S)
                    record[name] = match.group(1).decode() if match else None
                segment = {
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": 1.0,
                    "text": api.transcript,
                    "tokens": [],
                    "temperature": 0.0,
                    "compression_ratio": 1.0,
                    "no_speech_prob": 0.0,
                }
                if api.avg_logprob is not None:
                    segment["avg_logprob"] = api.avg_logprob
                payload = {
                    "text": api.transcript,
                    "language": "en",
                    "duration": 1.0,
                    "segments": [segment],
                }
                self._send(200, "application/json", json.dumps(payload).encode())
            elif self.path.endswith("/audio/speech"):
                request = json.loads(body)
                record.update(request)
                self._send(200, "audio/pcm", _tone(0.1 * len(request["input"].split())))
            else:
                self._send(404, "application/json", b'{"error":{"message":"not found"}}')

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def fake_openai_audio() -> Iterator[FakeAudioAPI]:
    api = FakeAudioAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
