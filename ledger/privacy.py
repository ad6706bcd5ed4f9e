"""Which payload fields are personal data, per event type (the crypto-shredding policy).

Personal fields are stored encrypted with their conversation's data key (see
`threadline.ledger.shredding`); destroying that key erases them. *Identifier* fields are personal
fields that name the data subject (a visitor reference, an identity subject, a phone number
in a transport reference): they also link the conversation to that subject in the blinded
subject index, which is how `erase SUBJECT` finds the conversations to shred.

After erasure a personal field reads as its marker: `ERASED` for text, or a per-field marker
that still validates against the payload model (e.g. `{"erased": true}` for an object).

Every core event type is declared here, also those with no personal field, so that adding
an event type is a decision (a test checks that every registered type is declared). Outer
packages declare their own types with `declare(...)`. A type that is not declared is stored
in clear. The list and its reasons are in docs/privacy.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ERASED = "[erased]"


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    personal: frozenset[str] = frozenset()
    identifiers: frozenset[str] = frozenset()
    markers: Mapping[str, Any] = field(default_factory=dict)
    ordered: tuple[str, ...] = ()  # `personal`, sorted (the encrypted field list)

    def marker(self, name: str) -> Any:
        return self.markers.get(name, ERASED)


_POLICIES: dict[str, FieldPolicy] = {}


def declare(
    event_type: str,
    personal: Iterable[str] = (),
    *,
    identifiers: Iterable[str] = (),
    markers: Mapping[str, Any] | None = None,
) -> None:
    """Declares the personal fields of `event_type` (none is a valid answer). Identifiers
    are personal too. Re-declaring the same policy is a no-op; a different one is an error."""
    ids = frozenset(identifiers)
    every = frozenset(personal) | ids
    policy = FieldPolicy(every, ids, dict(markers or {}), tuple(sorted(every)))
    unknown = set(policy.markers) - policy.personal
    if unknown:
        raise ValueError(f"{event_type}: markers for non-personal fields {sorted(unknown)}")
    existing = _POLICIES.get(event_type)
    if existing is not None and existing != policy:
        raise ValueError(f"the privacy policy of {event_type} is already declared differently")
    _POLICIES[event_type] = policy


def policy_for(event_type: str) -> FieldPolicy | None:
    return _POLICIES.get(event_type)


def declared() -> frozenset[str]:
    return frozenset(_POLICIES)


def identifier_terms(value: str) -> set[str]:
    """The index terms of an identifier: the value itself and its bare form (without a
    `scheme:` prefix and `;params`), so that `+15551234567` finds `tel:+15551234567`,
    `sms:+15551234567` and `tel:+15551234567;call-id=…` alike."""
    terms = {value}
    bare = value.split(":", 1)[1] if ":" in value else value
    bare = bare.split(";", 1)[0].strip()
    if bare:
        terms.add(bare)
    return terms


# -- core event types ----------------------------------------------------------------------

declare("ConversationStarted", identifiers=["visitor_ref"])
declare("LegOpened", identifiers=["transport_ref"])  # ANI/MSISDN, SIP call ids
declare("LegClosed")  # reason is a machine code (hangup, timeout)
declare("MessagePosted", ["text"])
declare("UtteranceTranscribed", ["text"])
declare("AgentSpoke", ["text", "spoken_text"])
declare("IdentityClaimed", identifiers=["subject"])
declare("IdentityVerified", identifiers=["subject"])
declare("VerificationFailed")  # reason is a machine code
declare("ToolCalled", ["arguments"], markers={"arguments": {"erased": True}})
declare("ToolResulted", ["result", "error"])
declare("EscalationSignalDetected", ["evidence"])  # quotes the visitor
declare("HandoffOffered")
declare("HandoffAccepted")
declare("HandoffCompleted", ["first_utterance"])  # generated from the visitor's history
declare("HandoffExpired")
declare("HandoffDeclined")
declare("HumanRequested")  # reason is a machine code (explicit, frustration, compliance)
# The operator is staff, named by their console account: not the data subject's data.
declare("OperatorJoined")
declare("OperatorLeft")
declare("CSATRecorded", ["comment"])
declare("ConversationResolved")
declare("SubjectErased")  # subject is a blinded reference, never the identifier itself
declare("SubjectExportRequested")  # the same blinded reference; requested_by is an API key id
