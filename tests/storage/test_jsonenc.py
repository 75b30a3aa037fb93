"""JSON for jsonb columns: NUL made storable, odd values converted, old JSON strings decoded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import PurePosixPath
from typing import Any

import pytest
from pydantic import BaseModel

from atlas.storage.jsonenc import clean_text, dumps, loads_lenient


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Model(BaseModel):
    name: str


class HasToDict:
    def to_dict(self) -> dict[str, int]:
        return {"a": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": "x\x00y"}, {"a": "x\ufffdy"}, id="nul-in-value"),
        pytest.param({"k\x00": 1}, {"k\ufffd": 1}, id="nul-in-key"),
        pytest.param(["\\u0000"], ["\\u0000"], id="literal-backslash-u-text-kept"),
        pytest.param(["\\\x00"], ["\\\ufffd"], id="backslash-then-nul"),
        pytest.param(["\\\\\x00"], ["\\\\\ufffd"], id="two-backslashes-then-nul"),
        pytest.param({1: "a", None: "b"}, {"1": "a", "null": "b"}, id="non-string-keys"),
        pytest.param({"s": {3, 1, 2}}, {"s": [1, 2, 3]}, id="set"),
        pytest.param(PurePosixPath("/a/b"), "/a/b", id="path"),
        pytest.param(b"caf\xc3\xa9 \xff", "café \ufffd", id="bytes"),
        pytest.param(Model(name="n"), {"name": "n"}, id="pydantic"),
        pytest.param(HasToDict(), {"a": 1}, id="to-dict"),
        pytest.param(Point(1, 2), {"x": 1, "y": 2}, id="dataclass"),
        pytest.param(object, "<class 'object'>", id="anything-else-as-text"),
        pytest.param({"big": 2**100}, {"big": 2**100}, id="integer-beyond-64-bits"),
    ],
)
def test_dumps(value: Any, expected: Any) -> None:
    text = dumps(value)
    assert json.loads(text) == expected
    assert "\\u0000" not in text.replace("\\\\", "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('{"a": 1}', {"a": 1}, id="object-text"),
        pytest.param("  [1, 2]", [1, 2], id="array-text-with-space"),
        pytest.param("{not json", "{not json", id="broken-json-kept"),
        pytest.param("plain words", "plain words", id="plain-text-kept"),
        pytest.param('"quoted"', '"quoted"', id="json-scalar-text-kept"),
        pytest.param({"a": 1}, {"a": 1}, id="already-decoded"),
        pytest.param(None, None, id="none"),
    ],
)
def test_loads_lenient(value: Any, expected: Any) -> None:
    assert loads_lenient(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("ok", "ok", id="clean"),
        pytest.param("a\x00b\x00", "a\ufffdb\ufffd", id="nul"),
    ],
)
def test_clean_text(value: str | None, expected: str | None) -> None:
    assert clean_text(value) == expected


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        pytest.param(float("nan"), "NaN", id="nan"),
        pytest.param(float("inf"), "Infinity", id="inf"),
        pytest.param(float("-inf"), "-Infinity", id="minus-inf"),
    ],
)
def test_non_finite_numbers_are_kept_as_text(value, stored, caplog):
    encoded = json.loads(dumps({"a": [1.5, {"b": value}], "c": None}))
    assert encoded == {"a": [1.5, {"b": stored}], "c": None}
    assert "NaN or infinite" in caplog.text
