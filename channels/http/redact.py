"""Credentials never reach a log line: API keys, signed tokens and the values of
credential-named query parameters are masked in every record, whoever logs it (uvicorn's
access log writes the full request path, query string included, before any route could
refuse a key sent there).
"""

from __future__ import annotations

import logging
import re

MASK = "[redacted]"
# tlk_<id>_<secret> keys and tl1.<payload>.<mac> visitor/handoff tokens, wherever they appear.
_KEY = re.compile(r"tlk_[A-Za-z0-9_-]+")
_TOKEN = re.compile(r"tl1\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
# A query parameter whose name says it is a credential (access_token, api_key, sig, …).
_PARAM = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*(?:token|key|secret|password|passwd|auth|sig|signature|"
    r"credential|session)[a-z0-9_.-]*)=)[^&;#\s\"']*"
)
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "threadline")


def redact(text: str) -> str:
    text = _PARAM.sub(lambda m: m.group(1) + MASK, text)
    text = _KEY.sub("tlk_" + MASK, text)
    return _TOKEN.sub("tl1." + MASK, text)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


_FILTER = RedactCredentials()


def install_log_redaction() -> None:
    """Idempotent. On the loggers (records logged there) and on their handlers (records
    propagated from child loggers, which logger filters do not see). Called again once the
    server has configured logging, which replaces handlers."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
