"""The agent's tools as a port: what the agent may ask of the business systems.

`ToolBackend` is implemented over real tables by `agent.sqltools` (SQLite, PostgreSQL); tests
may use fakes. `TOOL_SPECS` describe the tools to a language model (JSON Schema parameters
for function calling); `run_tool` validates arguments, applies the one access rule that must
never depend on a model (member data only for the *verified* member) and turns every failure
into a `ToolError` whose message the agent can repeat to the visitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline.handoff.errors import ToolError

LookupKind = Literal["claim", "policy", "appointment", "slot"]


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    policy_number: str
    first_name: str
    date_of_birth: str  # ISO date
    # The member's phone on file (E.164), if any: a verified member's number is recorded as
    # a second verified subject (tel:+E164) so SMS and PSTN legs can find the conversation.
    phone: str | None = None


class ToolBackend(Protocol):
    """Business data behind the tools. Every method is synchronous and raises ToolError
    with a visitor-safe message for expected failures (unknown plan, slot taken)."""

    def find_member(self, identifier: str) -> Member | None:
        """The member whose member id or policy number is `identifier` (case-insensitive)."""
        ...

    def lookup(
        self,
        member_id: str,
        kind: LookupKind,
        *,
        reference: str | None = None,
        month: int | None = None,
    ) -> list[dict[str, Any]]: ...

    def schedule(
        self,
        member_id: str,
        *,
        slot_id: str | None,
        date: str | None,
        topic: str,
        idempotency_key: str,
    ) -> dict[str, Any]: ...

    def quote(
        self,
        *,
        plan: str,
        riders: list[str],
        deductible: int | None,
        age: int | None,
    ) -> dict[str, Any]: ...


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LookupArgs(_Args):
    kind: LookupKind = Field(description="what to look up")
    reference: str | None = Field(
        default=None, max_length=40, description="a claim/policy/appointment number, if known"
    )
    month: int | None = Field(
        default=None, ge=1, le=12, description="month of service (1-12), e.g. 1 for January"
    )


class ScheduleArgs(_Args):
    slot_id: str | None = Field(default=None, max_length=40, description="a slot id from lookup")
    date: str | None = Field(
        default=None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="preferred day (YYYY-MM-DD); the first free slot that day is booked",
    )
    topic: str = Field(default="follow-up call", min_length=1, max_length=120)


class QuoteArgs(_Args):
    plan: str = Field(min_length=1, max_length=40, description="plan name, e.g. Silver")
    riders: list[str] = Field(default_factory=list, max_length=6, description="add-on riders")
    deductible: int | None = Field(default=None, ge=0, le=100_000, description="in dollars")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    args: type[_Args]
    needs_verified_member: bool

    def json_schema(self) -> dict[str, Any]:
        """An OpenAI-style function definition."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.args.model_json_schema(),
            },
        }


TOOL_SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "lookup",
            "Look up the verified member's claims, policy, appointments, or free appointment "
            "slots (kind=slot).",
            LookupArgs,
            needs_verified_member=True,
        ),
        ToolSpec(
            "schedule",
            "Book a call or appointment slot for the verified member.",
            ScheduleArgs,
            needs_verified_member=True,
        ),
        ToolSpec(
            "quote",
            "Price a plan per month, optionally with riders and a chosen deductible.",
            QuoteArgs,
            needs_verified_member=False,
        ),
    )
}


def run_tool(
    backend: ToolBackend,
    name: str,
    arguments: dict[str, Any],
    *,
    member: Member | None,
    call_id: str,
    age: int | None = None,
) -> Any:
    """Runs one tool call; ToolError for anything the visitor should hear about."""
    spec = TOOL_SPECS.get(name)
    if spec is None:
        raise ToolError(f"there is no tool called {name!r}")
    try:
        args = spec.args.model_validate(arguments)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        raise ToolError(f"{name}: {where}: {first['msg']}") from None
    if spec.needs_verified_member and member is None:
        raise ToolError("I need to verify your identity before I can look at your account")
    if isinstance(args, LookupArgs):
        assert member is not None
        return backend.lookup(
            member.member_id, args.kind, reference=args.reference, month=args.month
        )
    if isinstance(args, ScheduleArgs):
        assert member is not None
        return backend.schedule(
            member.member_id,
            slot_id=args.slot_id,
            date=args.date,
            topic=args.topic,
            idempotency_key=call_id,
        )
    assert isinstance(args, QuoteArgs)
    return backend.quote(plan=args.plan, riders=args.riders, deductible=args.deductible, age=age)
