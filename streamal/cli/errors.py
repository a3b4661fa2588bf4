"""Turn expected errors into one line on stderr and exit code 2 (no traceback)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from streamal.exceptions import StreamalError
from streamal.redact import redact

__all__ = ["friendly_errors"]

P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so that input and config errors exit with code 2 and one line."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (StreamalError, OSError) as err:
            typer.echo(f"error: {redact(str(err))}", err=True)
            raise typer.Exit(2) from None

    return wrapper
