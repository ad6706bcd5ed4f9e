"""X-Twilio-Signature, checked against the vectors of Twilio's own helper-library tests."""

from __future__ import annotations

import pytest

from threadline.channels.messaging.twilio_signature import (
    body_sha256,
    compute_signature,
    url_variants,
    validate,
)

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_matches_twilio_vector() -> None:
    assert compute_signature(TOKEN, URL, PARAMS) == EXPECTED
    assert validate(TOKEN, URL, PARAMS, EXPECTED)


def test_parameter_order_does_not_matter_but_values_do() -> None:
    assert validate(TOKEN, URL, list(reversed(PARAMS)), EXPECTED)
    tampered = [*PARAMS[:-1], ("Caller", "+14158675300")]
    assert not validate(TOKEN, URL, tampered, EXPECTED)
    assert not validate(TOKEN, URL, [*PARAMS, ("Extra", "1")], EXPECTED)


def test_repeated_parameters_sort_their_values() -> None:
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert compute_signature(TOKEN, URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # Port in the URL we saw, Twilio signed without it.
        (URL.replace(".com", ".com:1234"), EXPECTED),
        # http with port, Twilio signed with that port.
        (URL.replace(".com", ".com:1234").replace("https", "http"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        # No port in the URL, Twilio signed with the default port (443 / 80).
        (URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_url_with_and_without_port(url: str, signature: str) -> None:
    assert validate(TOKEN, url, PARAMS, signature)


def test_url_variants_keep_ipv6_brackets_userinfo_and_host_case() -> None:
    assert url_variants("http://[::1]:8000/x?y=1") == (
        "http://[::1]/x?y=1",
        "http://[::1]:8000/x?y=1",
    )
    assert url_variants("https://u:p@Host.com/x") == (
        "https://u:p@Host.com/x",
        "https://u:p@Host.com:443/x",
    )


def test_json_body_is_covered_by_body_sha256() -> None:
    body = b'{"property": "value", "boolean": true}'
    digest = body_sha256(body)
    assert digest == "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    url = f"{URL}&bodySHA256={digest}"
    assert validate(TOKEN, url, [], "a9nBmqA0ju/hNViExpshrM61xv4=", body=body)
    assert not validate(TOKEN, url, [], "a9nBmqA0ju/hNViExpshrM61xv4=", body=body + b" ")


@pytest.mark.parametrize("signature", [None, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8", "x" * 28])
def test_missing_or_wrong_signature_fails(signature: str | None) -> None:
    assert not validate(TOKEN, URL, PARAMS, signature)


def test_wrong_token_or_empty_token_fails() -> None:
    assert not validate("54321", URL, PARAMS, EXPECTED)
    assert not validate("", URL, PARAMS, compute_signature("", URL, PARAMS))
