"""Validation of user-given configuration values (model fields, CLI ``--set`` overrides).

Each helper returns the normalised value or raises :class:`~genjax_models.errors.ConfigError`
naming the field and the value it got, so a bad ``--set`` becomes one line at the CLI.
"""

from __future__ import annotations

import numbers
from typing import Any

from genjax_models.errors import ConfigError


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise a ConfigError unless it is a positive integer.

    Booleans are refused (``True`` is an ``int`` in Python but never a meaningful size).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def int_tuple(name: str, value: Any, allow_empty: bool = True) -> tuple[int, ...]:
    """Normalise a sequence of positive ints to a tuple (keeps a frozen model hashable)."""
    try:
        out = tuple(int(n) for n in value)
    except TypeError as err:
        raise ConfigError(f"{name} must be a sequence of ints, got {value!r}") from err
    if (not out and not allow_empty) or any(n < 1 for n in out):
        raise ConfigError(
            f"{name} must be {'a non-empty ' if not allow_empty else ''}tuple of "
            f"positive ints, got {value!r}"
        )
    return out
