"""`X-Twilio-Signature`: HMAC-SHA1 over the full URL plus the sorted POST parameters.

Behaves like Twilio's own helper library (`RequestValidator`): parameters are sorted by name,
each name's distinct values sorted and appended as name+value; the URL is checked both with
and without an explicit port (Twilio signs either form depending on how the webhook was
configured: `https://host/x` and `https://host:443/x` are both seen in the wild); JSON
bodies are covered by a `bodySHA256` query parameter instead of parameters. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The base64 HMAC-SHA1 Twilio would send for `url` and form `params` (name, value)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url
    for name in sorted(values):
        for value in sorted(values[name]):
            payload += name + value
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def url_variants(url: str) -> tuple[str, str]:
    """(url without port, url with an explicit port), as Twilio's validator tries both."""
    parts = urlsplit(url)
    userinfo, host, port = _split_netloc(parts.netloc)
    prefix = f"{userinfo}@" if userinfo else ""
    without = parts._replace(netloc=prefix + host).geturl()
    if port is None:
        port = str(DEFAULT_PORTS.get(parts.scheme.lower(), 80))
    with_port = parts._replace(netloc=f"{prefix}{host}:{port}").geturl()
    return without, with_port


def _split_netloc(netloc: str) -> tuple[str, str, str | None]:
    """(userinfo, host as written, port or None); IPv6 literals keep their brackets."""
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") and rest[1:] else None
    else:
        host, sep, port_text = hostport.partition(":")
        port = port_text if sep and port_text else None
    return userinfo, host, port


def validate(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]],
    signature: str | None,
    *,
    body: bytes | None = None,
) -> bool:
    """True when `signature` is Twilio's signature of this request.

    `params` are the form parameters of a form-encoded POST (empty for JSON bodies, which
    pass their raw `body` and carry its hash in the `bodySHA256` query parameter).
    """
    if not signature or not auth_token:
        return False
    pairs = list(params)
    body_ok = True
    query = parse_qs(urlsplit(url).query)
    if "bodySHA256" in query and body is not None:
        body_ok = hmac.compare_digest(body_sha256(body), query["bodySHA256"][0])
        pairs = []
    matched = False
    for candidate in url_variants(url):
        expected = compute_signature(auth_token, candidate, pairs)
        # Both variants are always computed: the time taken does not reveal which one matched.
        matched |= hmac.compare_digest(expected.encode(), signature.strip().encode())
    return body_ok and matched
