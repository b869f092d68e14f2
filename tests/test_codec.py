"""The codec: what every backend stores is plain JSON, or the write is refused with the path named."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from pathlib import PurePosixPath
from typing import Any

import pytest

from agno_orm import InvalidSessionError
from agno_orm.codec import MAX_DEPTH, encode


class Level(enum.IntEnum):
    HIGH = 3


class Name(str, enum.Enum):
    ADA = "ada"


@dataclasses.dataclass
class RunLike:
    run_id: str
    when: dt.date


class WithToDict:
    def to_dict(self) -> dict[str, Any]:
        return {"run_id": "r9"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Level.HIGH, 3),
        (Name.ADA, "ada"),
        ({Name.ADA: 1}, {"ada": 1}),
        (RunLike("r1", dt.date(2026, 5, 1)), {"run_id": "r1", "when": "2026-05-01"}),
        (WithToDict(), {"run_id": "r9"}),
        (b"\x00\xff", "AP8="),
        (PurePosixPath("/tmp/x"), "/tmp/x"),
        (dt.time(12, 30), "12:30:00"),
        (frozenset({3, 1, 2}), [1, 2, 3]),
        ({("x", 1)}, [["x", 1]]),
        ("naïve ✓ 🙂 \u202e", "naïve ✓ 🙂 \u202e"),
        (True, True),
        (10**30, 10**30),
    ],
)
def test_values_become_plain_json(value: Any, expected: Any) -> None:
    encoded = encode(value)
    assert encoded == expected
    assert json.loads(json.dumps(encoded)) == expected


def test_unorderable_sets_keep_their_items() -> None:
    assert sorted(encode({1, "a"}), key=str) == [1, "a"]


def test_error_names_the_path_to_the_bad_value() -> None:
    with pytest.raises(InvalidSessionError, match=r"memory\['runs'\]\[1\]\['x'\]: a object"):
        encode({"runs": [{}, {"x": object()}]}, where="memory")


def test_nesting_deeper_than_the_limit_is_refused_not_crashing() -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(InvalidSessionError, match="nested more than"):
        encode(value)


def test_nesting_thousands_deep_is_refused_without_recursion_error() -> None:
    value: Any = {}
    for _ in range(5000):
        value = {"k": value}
    with pytest.raises(InvalidSessionError):
        encode(value)


@pytest.mark.parametrize("bad", [float("nan"), float("-inf"), dt.timedelta(1)])
def test_values_without_a_json_form_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidSessionError):
        encode({"v": bad})


@pytest.mark.parametrize("text", ["lone \ud800 high", "lone \udfff low"])
def test_text_with_a_lone_surrogate_is_refused_naming_its_path(text: str) -> None:
    with pytest.raises(InvalidSessionError, match=r"state\['t'\]: text with a lone surrogate"):
        encode({"t": text}, where="state")


def test_a_key_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidSessionError, match="lone surrogate"):
        encode({"k\ud800": 1})


def test_text_with_nul_is_refused() -> None:
    with pytest.raises(InvalidSessionError, match="NUL"):
        encode(["a\x00b"])


def test_astral_and_combining_text_is_kept() -> None:
    assert encode({"é👋\u0301": "\U0010ffff\ufeff\u2028"}) == {"é👋\u0301": "\U0010ffff\ufeff\u2028"}
