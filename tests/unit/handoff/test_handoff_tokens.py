from __future__ import annotations

import pytest

from threadline.handoff import tokens
from threadline.handoff.errors import TokenError
from threadline.handoff.signing import Signer

NOW = 1_700_000_000.0
SIGNER = Signer(b"t" * 32, tokens.PURPOSE)


def _issue(**overrides: object) -> str:
    args: dict[str, object] = {
        "conversation_id": "conv-1",
        "handoff_id": "h-1",
        "channel": "webrtc",
        "level": 2,
        "now": NOW,
        "ttl_s": 120,
    }
    args.update(overrides)
    token, _ = tokens.issue(SIGNER, **args)  # type: ignore[arg-type]
    return token


def test_claims_round_trip() -> None:
    claims = tokens.verify(SIGNER, _issue(), now=NOW + 1)
    assert claims == tokens.HandoffClaims("conv-1", "h-1", "webrtc", 2, int(NOW), int(NOW) + 120)


def test_default_lifetime_is_short() -> None:
    with pytest.raises(TokenError) as err:
        tokens.verify(SIGNER, _issue(), now=NOW + 120)
    assert err.value.reason == "expired"


def test_visitor_token_is_not_a_handoff_token() -> None:
    visitor = Signer(b"t" * 32, "visitor").issue(
        {"cid": "conv-1", "hid": "h", "ch": "webrtc", "lvl": 3}, now=NOW, ttl_s=60
    )
    with pytest.raises(TokenError):
        tokens.verify(SIGNER, visitor, now=NOW)


def test_needs_a_handoff_signer() -> None:
    with pytest.raises(ValueError, match="handoff"):
        tokens.verify(Signer(b"t" * 32, "visitor"), _issue(), now=NOW)


def test_bad_level_and_channel_cannot_be_issued() -> None:
    with pytest.raises(ValueError, match="level"):
        _issue(level=4)
    with pytest.raises(ValueError, match="channel"):
        _issue(channel="fax")


def test_signed_but_incomplete_claims_are_malformed() -> None:
    token = SIGNER.issue({"cid": "conv-1"}, now=NOW, ttl_s=60)
    with pytest.raises(TokenError) as err:
        tokens.verify(SIGNER, token, now=NOW)
    assert err.value.reason == "malformed"


def test_addressed_conversation_reads_without_trusting() -> None:
    forged = Signer(b"f" * 32, tokens.PURPOSE).issue(
        {"cid": "victim", "hid": "h", "ch": "webrtc", "lvl": 3}, now=NOW, ttl_s=60
    )
    assert tokens.addressed_conversation(forged) == "victim"
    assert tokens.addressed_conversation("garbage") is None
    with pytest.raises(TokenError):
        tokens.verify(SIGNER, forged, now=NOW)
