"""Typed configuration values: parse and check a value against a field's annotation.

Model hyper-parameters, sample / log-prob options and training settings are declared once, as
annotated dataclass fields or :class:`Option` records. Values reach them from Python (``True``,
``(256, 128)``) or from the command line as text (``--set model.use_scan=false``,
``--option mean=0``); :func:`coerce` turns either into the declared type or raises one
:class:`~genjax_models.errors.ConfigError` naming the field, the value and what it accepts:

=====================  =====================================================================
annotation             accepts
=====================  =====================================================================
``bool``               ``True`` / ``False``; text ``true``/``false``/``1``/``0`` (any case)
``int``                integers (not bools); text ``12``, ``-3`` (``1.5`` is refused)
``float``              real numbers (not bools); text ``1e-3``, ``0.5``
``str``                text
``tuple[int, ...]``    sequences of ints; text ``(256, 128)``, ``[64]``, ``256,128``, ``64``
``tuple[float, float]``  a sequence of exactly two numbers
``T | None``           ``None``; text ``none`` / ``null`` (any case, unless ``T`` is ``str``)
``Literal[...]``       one of the listed values
=====================  =====================================================================
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import numbers
import re
import types
import typing
from typing import Any, Literal, NamedTuple

from genjax_models.errors import ConfigError, UnknownNameError

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
_NONE = {"none", "null"}
_INT = re.compile(r"^[+-]?\d+$")


class Option(NamedTuple):
    """One declared option of ``sample`` or ``log_prob``: name, type, default and meaning."""

    name: str
    type: Any
    default: Any
    help: str


def type_name(tp: Any) -> str:
    """Return a short readable name of an annotation, e.g. ``"tuple[int, ...] | None"``."""
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    text = repr(tp).replace("typing.", "")
    return text


def _fail(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{name} must be {expected}, got {value!r}")


def _literal_text(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    raise _fail(name, value, "a boolean (true/false/1/0)")


def _coerce_int(name: str, value: Any) -> int:
    if isinstance(value, str) and _INT.match(value.strip()):
        return int(value.strip())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise _fail(name, value, "an int")


def _coerce_float(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError as err:
            raise _fail(name, value, "a number") from err
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise _fail(name, value, "a number")


def _coerce_tuple(name: str, value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    expected = f"a tuple ({type_name(tuple[args])})"  # type: ignore[valid-type]
    if isinstance(value, str):
        text = value.strip()
        parsed = _literal_text(text)
        if isinstance(parsed, str) and "," not in text:
            raise _fail(name, value, expected)
        if isinstance(parsed, str):
            parsed = tuple(_literal_text(part.strip()) for part in text.split(",") if part.strip())
        value = parsed
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise _fail(name, value, expected)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
    if len(value) != len(args):
        raise _fail(name, value, f"a tuple of {len(args)} values ({type_name(tuple[args])})")  # type: ignore[valid-type]
    return tuple(
        coerce(f"{name}[{i}]", v, tp) for i, (v, tp) in enumerate(zip(value, args, strict=True))
    )


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to the annotation ``tp``, or raise a ConfigError.

    Args:
      name: the field's name as the user writes it (``model.hidden``), for the message.
      value: a Python value or the text of a command-line value.
      tp: the annotation (see the module docstring); ``Any`` passes text through
        ``ast.literal_eval`` and other values unchanged.

    Returns:
      The value as the declared type (tuples stay tuples, so models stay hashable).
    """
    if tp is Any or tp is inspect.Parameter.empty:
        return _literal_text(value) if isinstance(value, str) else value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        # Text "none" is None unless the field also takes text ("none" is a binarize mode).
        none_text = isinstance(value, str) and value.strip().lower() in _NONE and str not in args
        if type(None) in args and (value is None or none_text):
            return None
        if len(options) == 1:
            return coerce(name, value, options[0])
        for option in options:
            try:
                return coerce(name, value, option)
            except ConfigError:
                continue
        raise _fail(name, value, type_name(tp))
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        listed = ", ".join(str(c) for c in args)
        raise UnknownNameError(f"unknown {name} {value!r}; choose one of: {listed}")
    if tp is bool:
        return _coerce_bool(name, value)
    if tp is int:
        return _coerce_int(name, value)
    if tp is float:
        return _coerce_float(name, value)
    if tp is str:
        if isinstance(value, str):
            return value.strip()
        raise _fail(name, value, "text")
    if origin is tuple:
        return _coerce_tuple(name, value, args)
    if origin in (dict, list) or tp in (dict, list):
        value = _literal_text(value) if isinstance(value, str) else value
        if not isinstance(value, origin or tp):
            raise _fail(name, value, type_name(tp))
        return value
    return value


@functools.cache
def dataclass_field_types(cls: type) -> dict[str, Any]:
    """Return ``{field: annotation}`` of the init fields of dataclass ``cls`` (resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def coerce_fields(cls: type, values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Coerce every entry of ``values`` to the annotation of the same field of ``cls``."""
    types_ = dataclass_field_types(cls)
    return {k: coerce(f"{prefix}{k}", v, types_.get(k, Any)) for k, v in values.items()}


def attribute_docs(cls: type) -> dict[str, str]:
    """Return ``{name: first sentence}`` from the ``Attributes:`` sections of ``cls``'s MRO.

    A subclass's description of a field wins over its base class's. An entry may name several
    fields (``sampler, nfe: ...``).
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_section_entries(inspect.getdoc(klass) or "", "Attributes"))
    return docs


def _section_entries(doc: str, section: str) -> dict[str, str]:
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == f"{section}:")
    except StopIteration:
        return {}
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    base_indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        if indent < base_indent:
            break
        match = re.match(r"^([\w, ]+):\s*(.*)$", line.strip())
        if indent == base_indent and match:
            current = [match.group(2)]
            for field_name in match.group(1).split(","):
                entries[field_name.strip()] = current
        elif current is not None:
            current.append(line.strip())
    return {name: _first_sentence(" ".join(parts)) for name, parts in entries.items()}


def _first_sentence(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text.replace("``", ""))
    masked = text.replace("e.g.", "e_g_").replace("i.e.", "i_e_")
    match = re.search(r"(?<=[.;])\s", masked)
    return (text[: match.start()] if match else text).rstrip(".;")
