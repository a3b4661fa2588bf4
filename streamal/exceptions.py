"""The one exception tree of streamal.

Every error streamal raises on purpose derives from :class:`StreamalError`::

    StreamalError
    ├── ConfigError            a setting, spec or name is wrong: fix the command or config
    ├── DecodeError            a wire message or input row is malformed (names row and field)
    │   └── InputError         a replay source cannot be read (file missing, empty, bad column)
    ├── MessageRejected        one well-formed message breaks a rule or a limit (a dead letter)
    ├── CheckpointError        a snapshot is corrupt or from an incompatible version
    └── TransportError         the message broker failed (raised only by ``transports``)

Errors an operator must act on say what to do in their message.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DecodeError",
    "InputError",
    "MessageRejected",
    "StreamalError",
    "TransportError",
]


class StreamalError(Exception):
    """Base class of every error streamal raises on purpose."""


class ConfigError(StreamalError, ValueError):
    """A setting, spec or component name is invalid."""


class DecodeError(StreamalError, ValueError):
    """A message or input row could not be decoded.

    Parameters
    ----------
    reason
        What is wrong, in one line.
    field
        The field at fault (dotted path, e.g. ``x.age``), if known.
    row
        The 1-based row or line number in a file, if the input is a file.

    Examples
    --------
    >>> str(DecodeError("not a number", field="x.age", row=3))
    "row 3, field 'x.age': not a number"
    """

    def __init__(self, reason: str, *, field: str | None = None, row: int | None = None) -> None:
        self.reason = reason
        self.field = field
        self.row = row
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def at_row(self, row: int) -> DecodeError:
        """Return a copy of this error located at ``row``."""
        return type(self)(self.reason, field=self.field, row=row)


class InputError(DecodeError):
    """A replay source cannot be read: missing file, empty file, unknown column."""


class MessageRejected(StreamalError, ValueError):
    """One message breaks a rule or a limit; the service sends it to dead letters.

    Raised before anything is changed (see ``docs/security.md``), so that the message
    can be dropped and the stream goes on.

    Parameters
    ----------
    code
        The dead-letter reason code (see :data:`streamal.service.outputs.REASONS`).
    message
        What is wrong, in one line.

    Examples
    --------
    >>> err = MessageRejected("limit_exceeded", "id of 600 characters (limit 512)")
    >>> err.code, str(err)
    ('limit_exceeded', 'id of 600 characters (limit 512)')
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)

    def __reduce__(self) -> tuple[type[MessageRejected], tuple[str, str]]:
        return type(self), (self.code, str(self))


class CheckpointError(StreamalError):
    """A snapshot cannot be used (corrupt, truncated or written by an incompatible version)."""


class TransportError(StreamalError):
    """The message broker failed; raised only by ``streamal.transports``."""
