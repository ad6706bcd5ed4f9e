from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from threadline.handoff import signing
from threadline.handoff.errors import ConfigurationError, TokenError
from threadline.handoff.settings import HandoffSettings
from threadline.handoff.signing import Signer

SECRET = b"k" * 32
NOW = 1_700_000_000.0


def test_round_trip_carries_claims_purpose_and_lifetime() -> None:
    signer = Signer(SECRET, "visitor")
    token = signer.issue({"cid": "c1"}, now=NOW, ttl_s=60)
    claims = signer.verify(token, now=NOW + 59)
    assert claims == {"cid": "c1", "pur": "visitor", "iat": int(NOW), "exp": int(NOW) + 60}


def test_expired_at_exactly_exp() -> None:
    signer = Signer(SECRET, "visitor")
    token = signer.issue({}, now=NOW, ttl_s=60)
    with pytest.raises(TokenError) as err:
        signer.verify(token, now=NOW + 60)
    assert err.value.reason == "expired"


def test_other_secret_is_forged() -> None:
    token = Signer(SECRET, "visitor").issue({}, now=NOW, ttl_s=60)
    with pytest.raises(TokenError) as err:
        Signer(b"x" * 32, "visitor").verify(token, now=NOW)
    assert err.value.reason == "forged"


def test_purposes_do_not_cross() -> None:
    token = Signer(SECRET, "visitor").issue({}, now=NOW, ttl_s=60)
    with pytest.raises(TokenError) as err:
        Signer(SECRET, "handoff").verify(token, now=NOW)
    # Purpose keys differ, so this fails at the signature, before the purpose claim.
    assert err.value.reason == "forged"


def test_tampered_payload_is_forged() -> None:
    signer = Signer(SECRET, "visitor")
    token = signer.issue({"cid": "a"}, now=NOW, ttl_s=60)
    other = signer.issue({"cid": "b"}, now=NOW, ttl_s=60)
    spliced = ".".join([*other.split(".")[:2], token.split(".")[2]])
    with pytest.raises(TokenError) as err:
        signer.verify(spliced, now=NOW)
    assert err.value.reason == "forged"


def test_issued_in_the_future_is_refused() -> None:
    signer = Signer(SECRET, "visitor")
    token = signer.issue({}, now=NOW + 3600, ttl_s=60)
    with pytest.raises(TokenError) as err:
        signer.verify(token, now=NOW)
    assert err.value.reason == "malformed"


def test_reserved_claims_cannot_be_set() -> None:
    with pytest.raises(ValueError, match="reserved"):
        Signer(SECRET, "visitor").issue({"exp": 1}, now=NOW, ttl_s=60)


@given(st.text(max_size=300))
def test_garbage_is_a_token_error_never_a_crash(text: str) -> None:
    signer = Signer(SECRET, "visitor")
    with pytest.raises(TokenError):
        signer.verify(text, now=NOW)
    signing.peek(text)  # never raises


@given(st.binary(min_size=1, max_size=40))
def test_random_mac_never_verifies(mac: bytes) -> None:
    signer = Signer(SECRET, "visitor")
    head = signer.issue({"x": 1}, now=NOW, ttl_s=60).rsplit(".", 1)[0]
    with pytest.raises(TokenError):
        signer.verify(f"{head}.{signing._b64encode(mac)}", now=NOW)


def test_repr_and_errors_never_show_the_secret() -> None:
    secret = "s3cr3t-" + "z" * 30
    signer = Signer.from_settings("visitor", HandoffSettings(secret=SecretStr(secret)))
    assert secret not in repr(signer)
    assert "z" * 10 not in repr(signer)
    with pytest.raises(TokenError) as err:
        signer.verify("tl1.e30.AAAA", now=NOW)
    assert secret not in str(err.value)


def test_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        signing.resolve_secret(HandoffSettings(secret=SecretStr("short")))


def test_secret_from_the_configuration_tree() -> None:
    from threadline.app.settings import load_settings

    settings = load_settings({"THREADLINE_SECRET": "e" * 40})
    assert signing.resolve_secret(settings.handoff) == b"e" * 40


def test_unset_secret_is_ephemeral_but_stable_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("THREADLINE_SECRET", raising=False)
    first = signing.resolve_secret()
    assert len(first) == 32
    assert signing.resolve_secret() == first
