"""Property-based fuzzing of every operation in the published OpenAPI schema (schemathesis)
against a real server: no 5xx at all, error bodies are JSON, and no 4xx appends anything."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.api_server import ApiServer, create_key
from threadline.access.keys import MemoryKeyStore
from threadline.access.tokens import VisitorTokens
from threadline.app.bootstrap import Services
from threadline.channels.http.app import create_app
from threadline.channels.settings import ChannelSettings
from threadline.ledger.store import open_ledger

MAX_EXAMPLES = 30  # per operation; keeps the whole run well under a minute


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'fuzz.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"fuzz_{uuid.uuid4().hex[:12]}")
    key = create_key(url, name="fuzz")
    # Generous visitor limits: this test is about input handling, not rate limiting.
    with ApiServer(
        url, tmp / "server.log", access_log=False, THREADLINE_VISITOR_BURST="100000"
    ) as server:
        with server.client(key) as c:
            conv = c.post("/v1/conversations", json={}).json()
        yield {"server": server, "url": url, "key": key, "conversation": conv}


def operations() -> list[str]:
    """Operation labels are listed from the app itself, so a new route is fuzzed too."""
    services = Services(
        settings=ChannelSettings(),
        ledger=open_ledger("memory://"),
        keys=MemoryKeyStore(),
        tokens=VisitorTokens(b"x" * 32, 60),
    )
    spec = create_app(services).openapi()
    services.close()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


def call_stream(case: Any, base_url: str) -> tuple[int, str, str] | None:
    """An accepted stream never ends by itself: read the status line, then hang up. None
    when httpx refuses to send the generated request (e.g. an illegal header value)."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    try:
        with httpx.Client(timeout=5) as client, client.stream(**kwargs) as response:
            return _stream_status(response)
    except httpx.LocalProtocolError:
        return None


def _stream_status(response: httpx.Response) -> tuple[int, str, str]:
    if response.status_code == 200:
        return 200, response.headers.get("content-type", ""), ""
    response.read()
    return response.status_code, response.headers.get("content-type", ""), response.text


@pytest.mark.parametrize("label", operations())
def test_fuzz_operation(fuzz_target: dict[str, Any], label: str, tmp_path: Path) -> None:
    server: ApiServer = fuzz_target["server"]
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operation = next(op.ok() for op in schema.get_all_operations() if op.ok().label == label)
    conversation = fuzz_target["conversation"]
    credentials = {
        "key": f"Bearer {fuzz_target['key']}",
        "visitor": f"Bearer {conversation['visitor_token']}",
        "other": "Bearer tlk_0000000000000000_" + "A" * 43,
    }
    ledger = open_ledger(fuzz_target["url"])
    failures: list[str] = []
    statuses: list[int] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(),
        who=st.sampled_from(["key", "visitor", "generated", "other"]),
        real_conversation=st.booleans(),
        valid_text=st.none() | st.text(min_size=1, max_size=80).filter(str.strip),
    )
    def check(case: Any, who: str, real_conversation: bool, valid_text: str | None) -> None:
        if who != "generated":
            case.headers = {**(case.headers or {}), "Authorization": credentials[who]}
        if real_conversation and case.path_parameters and "conversation_id" in case.path_parameters:
            case.path_parameters["conversation_id"] = conversation["conversation_id"]
        if valid_text is not None and label.endswith("/events") and case.method == "POST":
            # Random types and payloads are nearly always invalid: mix in valid events, so
            # the append path itself is fuzzed (with arbitrary text) as well.
            case.body = {
                "event_id": str(uuid.uuid4()),
                "type": "MessagePosted",
                "data": {"role": "visitor", "text": valid_text},
            }
        before = ledger.max_sequence()
        if label.endswith("/stream"):
            streamed = call_stream(case, server.base_url)
            if streamed is None:
                return
            status, content_type, text = streamed
        else:
            response = case.call(base_url=server.base_url, timeout=5)
            status, text = response.status_code, response.text
            content_type = response.headers.get("content-type", [""])[0]
        after = ledger.max_sequence()
        statuses.append(status)
        where = f"{case.method} {case.formatted_path} as {who} -> {status}"
        if status >= 500:
            failures.append(f"{where}: {text[:200]}")
        if 400 <= status < 500:
            if after != before:
                failures.append(f"{where}: appended {after - before} events")
            if not content_type.startswith("application/json"):
                failures.append(f"{where}: error body is not JSON")

    try:
        check()
    finally:
        ledger.close()
    assert failures == []
    if reachable(label):
        # The fuzzing reached the operation's success path too, not only its error answers.
        assert any(s < 400 for s in statuses), sorted(statuses)


def reachable(label: str) -> bool:
    """Operations whose success the fuzzer can reach with the credentials it holds (an API
    key, a visitor token, a real conversation). Others need what only another party has — a
    handoff token and a browser's SDP offer (voice sessions), a provider's signature
    (messaging webhooks) — and are checked for no 5xx and no append only."""
    path = label.split(" ", 1)[1]
    return path.startswith(("/v1/conversations", "/v1/metrics")) or path in (
        "/healthz",
        "/metrics",
    )


def test_fuzz_sse_resume_headers(fuzz_target: dict[str, Any]) -> None:
    """`Last-Event-ID` is input too (a huge one once aborted the stream with OverflowError):
    any value is a 200 stream or a JSON 4xx, never a 5xx."""
    server: ApiServer = fuzz_target["server"]
    conversation = fuzz_target["conversation"]
    url = f"{server.base_url}/v1/conversations/{conversation['conversation_id']}/stream"
    auth = {"Authorization": f"Bearer {conversation['visitor_token']}"}
    failures: list[str] = []

    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(
        value=st.integers(min_value=-(2**80), max_value=2**80).map(str)
        | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
        | st.sampled_from(["9" * 32, str(2**63), str(2**53 + 1), " 1", "1_0", "+5"]),
        after=st.none() | st.integers(min_value=-5, max_value=2**64),
    )
    def check(value: str, after: int | None) -> None:
        params = {} if after is None else {"after": after}
        headers = {**auth, "Last-Event-ID": value}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5, read=0.5)) as client,
                client.stream("GET", url, headers=headers, params=params) as response,
            ):
                status, content_type, text = _stream_status(response)
                if status == 200 and not _stays_open(response):
                    failures.append(f"{value!r} after={after} -> 200, then the stream ended")
        except httpx.LocalProtocolError:
            return  # not sendable (e.g. surrounding spaces): nothing reached the server
        if status >= 500:
            failures.append(f"{value!r} after={after} -> {status}: {text[:200]}")
        elif status != 200 and not content_type.startswith("application/json"):
            failures.append(f"{value!r} -> {status}: error body is not JSON")

    check()
    assert failures == []


def _stays_open(response: httpx.Response) -> bool:
    """A live stream sends what it has, then waits: a read that times out. One that ends
    (or breaks) by itself was aborted by the server."""
    try:
        for _ in response.iter_bytes():
            pass
    except httpx.ReadTimeout:
        return True
    except httpx.RemoteProtocolError:
        return False
    return False
