"""Data-subject requests over HTTP (issue 17, class 9): export and erase a subject's data.

`POST /v1/data-subjects/export` and `POST /v1/data-subjects/erase` take `{"subject": ...}`
(an identifier as recorded or its bare form, e.g. `+15551234567`). Only adapter API keys
created with the `data-subjects` scope (`threadline keys create --scope data-subjects`: a
privacy officer's key, not every adapter's) may call them, and only conversations of the
key's own tenant are exported, erased or named. Each request is recorded: erasure appends
`SubjectErased` to every conversation it shreds (actor `key:<id>`), export appends
`SubjectExportRequested` to every conversation it hands out. A rejected request
(401/403/422/429/503) appends nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import ForbiddenError, ServiceUnavailableError
from threadline.access.keys import DATA_SUBJECTS
from threadline.access.policy import KeyPrincipal, require_key
from threadline.channels.http.deps import DirectoryDep, RequiredPrincipal, ServicesDep
from threadline.channels.http.errors import responses
from threadline.ledger.envelope import NewEvent
from threadline.ledger.erasure import MAX_REASON, MAX_SUBJECT, erase_subject, subject_conversations
from threadline.ledger.errors import ErasureUnavailableError
from threadline.ledger.events import SubjectExportRequested

router = APIRouter(prefix="/v1/data-subjects", tags=["data subjects"])


class SubjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT)
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON)


def _officer(principal: RequiredPrincipal) -> KeyPrincipal:
    key = require_key(principal)
    if DATA_SUBJECTS not in key.scopes:
        raise ForbiddenError(
            f"this API key may not make data-subject requests (it lacks the "
            f"{DATA_SUBJECTS!r} scope)"
        )
    return key


@router.post("/erase", responses=responses(401, 403, 422, 429, 503))
async def erase(
    body: SubjectRequest,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Crypto-shreds the subject in the key's tenant; idempotent (a repeat shreds nothing
    new and appends nothing)."""
    key = _officer(principal)

    def run() -> dict[str, Any]:
        try:
            report = erase_subject(
                services.ledger,
                body.subject,
                body.reason,
                within=lambda c: directory.tenant_of(c) == key.tenant,
                actor=f"key:{key.key_id}",
            )
        except ErasureUnavailableError as exc:
            raise ServiceUnavailableError(str(exc)) from None
        return report.to_json()

    return await run_in_threadpool(run)


@router.post("/export", responses=responses(401, 403, 422, 429, 503))
async def export(
    body: SubjectRequest,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: RequiredPrincipal,
) -> dict[str, Any]:
    """Every conversation of the key's tenant linked to the subject, decrypted (erased fields
    read `[erased]`); the hand-out is recorded on each conversation first."""
    key = _officer(principal)

    def run() -> dict[str, Any]:
        try:
            ref, found = subject_conversations(
                services.ledger, body.subject, lambda c: directory.tenant_of(c) == key.tenant
            )
        except ErasureUnavailableError as exc:
            raise ServiceUnavailableError(str(exc)) from None
        request_id = uuid4()
        out = []
        for conversation_id in found:
            services.ledger.append(
                conversation_id,
                NewEvent(
                    "SubjectExportRequested",
                    SubjectExportRequested(subject=ref, requested_by=f"key:{key.key_id}"),
                    actor=f"key:{key.key_id}",
                ),
            )
            events = services.ledger.read(conversation_id)
            out.append(
                {"conversation_id": conversation_id, "events": [e.to_json() for e in events]}
            )
        return {"subject_ref": ref, "request_id": str(request_id), "conversations": out}

    return await run_in_threadpool(run)
