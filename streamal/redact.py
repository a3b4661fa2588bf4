"""Keep secrets out of printed settings, log lines and error messages.

:func:`redact` hides the password of any ``user:password@host`` address in a text;
:func:`redact_options` hides the values of secret-looking keys in a mapping of client
options (``sasl_plain_password``, ``ssl_password``, ``*token*``, ``*secret*``...).

Examples
--------
>>> redact("cannot connect to SASL_SSL://alice:hunter2@broker:9093,b2:9093")
'cannot connect to SASL_SSL://alice:**********@broker:9093,b2:9093'
>>> redact_options({"sasl_plain_password": "hunter2", "acks": "all"})
{'sasl_plain_password': '**********', 'acks': 'all'}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "RedactingFilter", "is_secret_key", "redact", "redact_options"]

#: What a secret is replaced with (pydantic's mask for ``SecretStr``).
MASK = "**********"

_USERINFO = re.compile(r"(?P<user>[^\s:/@,;'\"]+):(?P<password>[^\s@/,;'\"]+)@")
_SECRET_KEY = re.compile(r"pass|secret|token|credential|jaas|private|(^|_)key$", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every ``user:password@`` address masked."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m['user']}:{MASK}@", text)


def is_secret_key(name: str) -> bool:
    """Whether an option called ``name`` holds a secret (``ssl_keyfile`` is a path: no).

    Examples
    --------
    >>> [is_secret_key(k) for k in ("ssl_password", "sasl_oauth_token_provider", "acks")]
    [True, True, False]
    """
    return bool(_SECRET_KEY.search(name))


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``options`` with secret values masked (nested mappings too)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            out[key] = redact_options(value)
        elif is_secret_key(str(key)) and value is not None:
            out[key] = MASK
        elif isinstance(value, str):
            out[key] = redact(value)
        else:
            out[key] = value
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that masks ``user:password@`` addresses in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
