# -*- test-case-name: tests.test_control_live -*-
"""The live view's page and its files, shipped in the package
(``teltotwist/control/static``): served as they are, no build step."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from teltotwist.control.answers import Answer

_CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
    ".txt": b"text/plain; charset=utf-8",
}

_PAGE_HEADERS = (
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class StaticFiles:
    """The files under *directory* with a known type, by relative path
    (``leaflet/leaflet.js``); nothing else can be asked for."""

    def __init__(self, directory: Traversable | None = None) -> None:
        root = (
            files("teltotwist.control") / "static" if directory is None else directory
        )
        self._files: dict[str, Traversable] = dict(_walk(root, ""))

    def answer(self, path: str) -> Answer | None:
        """The file at *path* (``index.html`` is the page), or None."""
        found = self._files.get(path)
        if found is None:
            return None
        content_type = _CONTENT_TYPES[_suffix(found.name)]
        return Answer(200, found.read_bytes(), content_type, _PAGE_HEADERS)


def _walk(directory: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for entry in directory.iterdir():
        if entry.is_dir():
            found.extend(_walk(entry, f"{prefix}{entry.name}/"))
        elif _suffix(entry.name) in _CONTENT_TYPES:
            found.append((prefix + entry.name, entry))
    return found


def _suffix(name: str) -> str:
    return name[name.rfind(".") :] if "." in name else ""
