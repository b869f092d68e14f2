"""The one place where session payloads become JSON values.

Every backend stores what `encode` returns and nothing else, so a value either round-trips as
JSON or is refused before anything is written. Values JSON has no type for are converted the
way a reader of the stored data expects:

    datetime, date, time  -> ISO 8601 string      UUID, Decimal, Path -> str
    Enum                  -> its value (encoded)  set, frozenset      -> list (sorted when orderable)
    tuple                 -> list                 bytes               -> base64 string
    pydantic model        -> model_dump(mode="json")
    dataclass instance    -> its fields as a dict
    object with to_dict() -> what to_dict() returns (agno's run objects)

NaN and infinities are refused (PostgreSQL and MySQL reject them in JSON, and `json` would write
text no other JSON parser reads), as are mappings with non-string keys that JSON would silently
turn into strings, nesting deeper than MAX_DEPTH, and text that some backend cannot store:
lone surrogates (`"\\ud800"`, which UTF-8 cannot carry) and NUL (`"\\x00"`, which PostgreSQL's
JSONB and text columns refuse). Refusing them everywhere keeps every backend storing the same
sessions; `check_text` is the test, applied to ids too.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from agno_orm.errors import InvalidSessionError

__all__ = ["MAX_DEPTH", "JsonValue", "check_text", "encode"]

JsonValue = Any
"""A value made only of dict (str keys), list, str, int, float, bool and None."""

MAX_DEPTH = 256
"""Deepest nesting accepted; deeper payloads are refused rather than crashing the encoder."""


def encode(value: Any, *, where: str = "value", depth: int = 0) -> JsonValue:
    """Return `value` as plain JSON data, or raise InvalidSessionError naming the offending path.

    `depth`: how deep `value` sits in the value it is part of (`where`), for a part encoded apart.
    """
    return _encode(value, where, depth)


def _encode(value: Any, where: str, depth: int) -> JsonValue:
    if depth > MAX_DEPTH:
        raise InvalidSessionError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    # bool is an int subclass and an Enum may be a str subclass: test the exact JSON types first.
    if type(value) is str:
        check_text(value, where)
        return value
    if value is None or type(value) in (int, bool):
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise InvalidSessionError(f"{where}: {value!r} cannot be stored as JSON")
        return value
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if isinstance(key, enum.Enum):
                key = key.value
            if not isinstance(key, str):
                raise InvalidSessionError(
                    f"{where}: mapping key {key!r} is a {type(key).__name__}; JSON keys must be str"
                )
            check_text(key, f"{where} key {key!r}")
            out[str(key)] = _encode(item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return _encode(value.value, where, depth + 1)
    if isinstance(value, (str, int, float)):  # subclasses of the JSON scalars
        return _encode(_plain_scalar(value), where, depth)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal, PurePath)):
        if isinstance(value, Decimal) and not value.is_finite():
            raise InvalidSessionError(f"{where}: {value!r} cannot be stored as JSON")
        return str(value)
    if isinstance(value, (set, frozenset)):
        items = [_encode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, BaseModel):
        return _encode(value.model_dump(mode="json"), where, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _encode(fields, where, depth + 1)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _encode(to_dict(), where, depth + 1)
    raise InvalidSessionError(f"{where}: a {type(value).__name__} cannot be stored as JSON")


def check_text(text: str, where: str) -> None:
    """Refuse text holding NUL or a lone surrogate (InvalidSessionError), which not every backend stores."""
    if "\x00" in text:
        raise InvalidSessionError(
            f"{where}: text with a NUL character (at {text.index(chr(0))}) cannot be stored"
        )
    if text.isascii():  # constant time: CPython knows whether a str is ASCII
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidSessionError(
            f"{where}: text with a lone surrogate ({text[exc.start : exc.end]!r} at {exc.start}) "
            "is not valid Unicode and cannot be stored"
        ) from None


def _plain_scalar(value: str | int | float) -> str | int | float:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    return float(value)
