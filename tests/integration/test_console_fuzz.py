"""Property-based fuzzing of the operator console's JSON API (schemathesis) against a real
server, signed in as an operator: no 5xx at all, error bodies are JSON, nothing appended.

The console is left out of the published OpenAPI schema, so its schema is generated here
from the console router itself (a route added later is fuzzed too). Issue 17, class 6: a
huge `as-of` position once answered 500.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.api_server import ApiServer
from tests.integration.test_console_access import CID, PASSWORD, create_operator
from tests.support import console_seed
from threadline.channels.console import routes
from threadline.ledger.store import open_ledger

MAX_EXAMPLES = 25
SKIP = {("POST", "/console/api/login"), ("POST", "/console/api/logout")}


def console_schema() -> dict[str, Any]:
    api = []
    for route in routes.router.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/console/api/"):
            visible = copy.copy(route)
            visible.include_in_schema = True
            api.append(visible)
    return get_openapi(title="console", version="1", routes=api)


SCHEMA = console_schema()
LABELS = [
    f"{method.upper()} {path}"
    for path, item in SCHEMA["paths"].items()
    for method in item
    if (method.upper(), path) not in SKIP
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console-fuzz")
    url = f"sqlite:///{tmp / 'threadline.db'}"
    ledger = open_ledger(url)
    try:
        console_seed.population(ledger)
    finally:
        ledger.close()
    done = create_operator(url, "ops", PASSWORD)
    assert done.returncode == 0, done.stderr
    with ApiServer(url, tmp / "server.log", access_log=False) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            login = client.post("/console/api/login", json={"name": "ops", "password": PASSWORD})
            assert login.status_code == 200, login.text
            cookies = dict(client.cookies)
        yield {"server": server, "url": url, "cookies": cookies}


@pytest.mark.parametrize("label", LABELS)
def test_fuzz_console_operation(target: dict[str, Any], label: str) -> None:
    server: ApiServer = target["server"]
    schema = schemathesis.openapi.from_dict(SCHEMA)
    operation = next(op.ok() for op in schema.get_all_operations() if op.ok().label == label)
    ledger = open_ledger(target["url"])
    failures: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), real_conversation=st.booleans())
    def check(case: Any, real_conversation: bool) -> None:
        if real_conversation and case.path_parameters and "conversation_id" in case.path_parameters:
            case.path_parameters["conversation_id"] = CID
        before = ledger.max_sequence()
        response = case.call(base_url=server.base_url, timeout=10, cookies=target["cookies"])
        status = response.status_code
        content_type = response.headers.get("content-type", [""])[0]
        where = f"{case.method} {case.formatted_path} {case.query} -> {status}"
        if status >= 500:
            failures.append(f"{where}: {response.text[:200]}")
        if 400 <= status < 500 and not content_type.startswith("application/json"):
            failures.append(f"{where}: error body is not JSON")
        if ledger.max_sequence() != before:
            failures.append(f"{where}: the console appended to the ledger")

    try:
        check()
        huge = httpx.get(
            f"{server.base_url}/console/api/conversations/{CID}/as-of",
            params={"position": str(10**30)},
            cookies=target["cookies"],
        )
        assert huge.status_code == 422, huge.text
    finally:
        ledger.close()
    assert failures == []
