"""The UI's third-party files are exactly what VENDOR.json records, and nothing loads from a CDN."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import atlas.ui

UI = Path(atlas.ui.__file__).parent
STATIC = UI / "static"
VENDOR = STATIC / "vendor"
MANIFEST = json.loads((VENDOR / "VENDOR.json").read_text())
LISTED = {
    path: digest for package in MANIFEST["packages"] for path, digest in package["files"].items()
}
# What would make a browser fetch from another origin: src/href/action/srcset to http(s) or a
# protocol-relative //host, CSS url(...) or @import of one.
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//"""
    r"""|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//)""",
    re.IGNORECASE,
)


def _served_files() -> list[Path]:
    return sorted(p for p in [*STATIC.rglob("*"), *(UI / "templates").rglob("*")] if p.is_file())


@pytest.mark.parametrize("path", sorted(LISTED))
def test_every_listed_file_matches_its_sha256(path: str):
    assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == LISTED[path]


def test_every_vendored_file_is_listed():
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - {
        "VENDOR.json"
    }
    assert present == set(LISTED)


@pytest.mark.parametrize("package", MANIFEST["packages"], ids=lambda p: p["package"])
def test_each_package_is_pinned_with_its_registry_integrity_and_license(package: dict[str, str]):
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"])
    assert package["integrity"].startswith("sha512-")
    assert package["license"]
    assert any(Path(path).name.upper().startswith("LICENSE") for path in package["files"])


@pytest.mark.parametrize("path", _served_files(), ids=lambda p: p.relative_to(UI).as_posix())
def test_nothing_is_loaded_from_another_origin(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    assert EXTERNAL.findall(text) == []


@pytest.mark.parametrize(
    "line",
    [
        '<script src="https://cdn.example/x.js">',
        "<link href='//cdn.example/x.css'>",
        "background: url(https://cdn.example/a.png)",
        '@import url("https://fonts.example/css");',
        "@import 'http://x.example/y.css';",
    ],
)
def test_the_external_pattern_catches_cdn_loads(line: str):
    assert EXTERNAL.search(line)


def test_the_external_pattern_allows_svg_namespaces_and_local_paths():
    # Pico's inline SVG icons (data: URLs) declare an xmlns; that loads nothing.
    assert not EXTERNAL.search("url(\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'")
    assert not EXTERNAL.search('<link rel="stylesheet" href="/static/app.css">')
