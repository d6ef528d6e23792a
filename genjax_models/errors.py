"""User-facing errors.

Every mistake a user can make (an unknown name, a wrong shape, NaN data, a bad path, a
checkpoint that does not match) raises a subclass of :class:`GenjaxError` whose message
names the fix. The CLI prints the message and exits with status 2, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class GenjaxError(ValueError):
    """Base class for errors caused by user input (names, shapes, data, paths, configs)."""


class UnknownNameError(GenjaxError, KeyError):
    """An unknown model, dataset, sampler or option name; the message lists the choices."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message.
        return str(self.args[0]) if self.args else ""


class ShapeError(GenjaxError):
    """An array whose shape or dtype is not what a function expects."""


class DataError(GenjaxError):
    """Data that cannot be used as is: NaN/inf values, values out of range, bad files."""


class CheckpointError(GenjaxError):
    """A missing, corrupted or mismatched checkpoint or workdir."""


class ConfigError(GenjaxError):
    """A configuration that is invalid or contradicts the one a workdir was created with."""


class NonFiniteLossError(GenjaxError):
    """Training produced a NaN or inf loss; the message names the step."""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    """Build the standard 'unknown X' error listing the valid choices."""
    listed = ", ".join(sorted(choices))
    return UnknownNameError(f"unknown {kind} {name!r}; choose one of: {listed}")
