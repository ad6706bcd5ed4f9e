"""FastAPI dependencies: the wired services, the caller's identity, rate limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from threadline.access.errors import UnauthenticatedError
from threadline.access.keys import looks_like_key
from threadline.access.policy import KeyPrincipal, Principal, TenantDirectory, VisitorPrincipal
from threadline.channels.services import Services

bearer = HTTPBearer(
    auto_error=False,
    description="An adapter API key (`tlk_…`) or a visitor token from POST /v1/conversations.",
)


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_directory(request: Request) -> TenantDirectory:
    directory: TenantDirectory = request.app.state.directory
    return directory


ServicesDep = Annotated[Services, Depends(get_services)]
DirectoryDep = Annotated[TenantDirectory, Depends(get_directory)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def identify(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal | None:
    """Identifies the caller and charges its rate budget. Bad credentials are an error
    even where anonymous calls are allowed: a client sending a wrong key must find out.
    A plain function, not a dependency of its own: each FastAPI sub-dependency costs the
    request path a measurable share of its CPU (docs/performance.md)."""
    services: Services = request.app.state.services
    limiters = services.limiters
    assert limiters is not None
    assert services.key_verifier is not None
    gate, address = limiters.failed_auth, client_address(request)
    if credentials is None:
        if request.headers.get("authorization"):
            gate.check(address)
            gate.failed(address)
            raise UnauthenticatedError("Authorization header must be 'Bearer <token>'")
        return None
    token = credentials.credentials
    principal: Principal
    try:
        if looks_like_key(token):
            record = services.key_verifier.verify(token)
            principal = KeyPrincipal(record.key_id, record.name, record.tenant, record.scopes)
        else:
            claims = services.tokens.verify(token)
            principal = VisitorPrincipal(claims.conversation_id, claims.leg_id, claims.tenant)
    except UnauthenticatedError:
        # Failed guesses spend the caller's address budget (429 once it is spent), which
        # slows brute force; a valid credential from the same address still works, since
        # checking one writes nothing.
        gate.check(address)
        gate.failed(address)
        raise
    if isinstance(principal, KeyPrincipal):
        limiters.key.check(principal.key_id)
    else:
        limiters.visitor.check(principal.conversation_id)
    return principal


async def optional_principal(request: Request, credentials: Credentials) -> Principal | None:
    return identify(request, credentials)


async def required_principal(request: Request, credentials: Credentials) -> Principal:
    principal = identify(request, credentials)
    if principal is None:
        raise UnauthenticatedError("missing credentials: send Authorization: Bearer <token>")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
RequiredPrincipal = Annotated[Principal, Depends(required_principal)]
