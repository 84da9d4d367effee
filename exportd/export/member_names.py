"""Safe names for the members of a bundle whose paths come from the data. Pure, no I/O.

A files dataset's row may name the member its object becomes (a user's own file
name, say): whatever it holds, the member's name is a relative path that every
common unzip tool extracts inside the target folder, on every common system:

- ``\\`` is a separator, as Windows tools read it; empty, ``.`` and ``..`` segments
  are dropped, so the name can neither start at the root nor climb out of the folder;
- a drive letter's ``:`` and the other characters Windows forbids (``*?"<>|``), and
  control, format (such as right-to-left overrides), surrogate, private-use and
  unassigned characters, become ``_``;
- a segment has no leading or trailing spaces or dots (Windows drops trailing ones,
  and a leading dot hides a file), is not a Windows device name (``CON``, ``NUL``,
  ``COM1``...: given a leading ``_``), and holds at most ``SEGMENT_MAX_BYTES`` bytes;
  the whole name at most ``NAME_MAX_BYTES`` (the extension is kept when cut);
- names are unique within the zip, compared without case (Windows and macOS file
  systems ignore it), and no file has the name of another's folder: a later one gets
  `` (2)``, `` (3)``... before its extension.

Text is NFKC-normalized (fullwidth dots and slashes, U+FF0E and U+FF0F, are ``.`` and
``/``, dropped as those are, where a Windows tool's best-fit code page would have mapped
them back); the zip writer flags a non-ASCII name as UTF-8.
"""

from __future__ import annotations

import unicodedata

SEGMENT_MAX_BYTES = 200
NAME_MAX_BYTES = 400
FALLBACK = "file"
_FORBIDDEN = frozenset(':*?"<>|')
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"}
)


def safe_path(text: str) -> str:
    """``text`` as a safe relative path (segments joined by ``/``), never empty."""
    # NFKC, not NFC: compatibility forms become what they stand for, so the fullwidth
    # U+FF0E U+FF0E U+FF3C is checked as "..\\", what a Windows tool's best-fit code page
    # would make of it.
    text = unicodedata.normalize("NFKC", text).replace("\\", "/")
    segments = [_segment(s) for s in text.split("/")]
    kept = [s for s in segments if s]
    if not kept:
        return FALLBACK
    return _bounded("/".join(kept))


def _segment(raw: str) -> str:
    if raw in ("", ".", ".."):
        return ""
    text = "".join(
        "_" if c in _FORBIDDEN or unicodedata.category(c) in _BAD_CATEGORIES else c for c in raw
    )
    text = text.strip(" .")
    if not text:
        # A segment of dots and spaces only ("...", ". ."): not a name on Windows.
        return ""
    if text.split(".", 1)[0].rstrip(" ").upper() in _DEVICES:
        text = "_" + text
    return _cut(text, SEGMENT_MAX_BYTES)


def _cut(name: str, most: int) -> str:
    """``name`` in at most ``most`` UTF-8 bytes, its extension kept where it is short."""
    if len(name.encode("utf-8")) <= most:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode("utf-8")) > 16:
        stem, extension = name, ""
    tail = f".{extension}" if extension else ""
    room = most - len(tail.encode("utf-8"))
    while len(stem.encode("utf-8")) > room:
        stem = stem[:-1]
    return stem.rstrip(" .") + tail


def _bounded(path: str) -> str:
    """``path`` in at most ``NAME_MAX_BYTES`` bytes: its last segment kept whole, the
    folders before it cut from the end."""
    if len(path.encode("utf-8")) <= NAME_MAX_BYTES:
        return path
    folders, _, last = path.rpartition("/")
    room = NAME_MAX_BYTES - len(last.encode("utf-8")) - 1
    while folders and len(folders.encode("utf-8")) > room:
        folders = folders[:-1]
    folders = "/".join(s.strip(" .") for s in folders.split("/") if s.strip(" ."))
    return f"{folders}/{last}" if folders else last


def with_suffix(name: str, number: int) -> str:
    """``name`` with `` (number)`` before its extension: ``a/b (2).pdf``."""
    folder, slash, last = name.rpartition("/")
    stem, dot, extension = last.rpartition(".")
    if not dot or not stem:
        stem, extension = last, ""
    tail = f".{extension}" if extension else ""
    suffix = f" ({number})"
    base = _cut(stem, SEGMENT_MAX_BYTES - len((suffix + tail).encode("utf-8")))
    return f"{folder}{slash}{base}{suffix}{tail}"


class MemberNames:
    """The names given so far in one zip; ``claim`` gives each new member its own."""

    def __init__(self, taken: tuple[str, ...] = ()) -> None:
        self._files: set[str] = set()
        self._folders: set[str] = set()
        for name in taken:
            self._take(name)

    def claim(self, folder: str, path: str) -> str:
        """A unique safe name for ``path`` (from the data) under ``folder`` (the
        definition's, already safe)."""
        parts = (f"{folder}/{safe_path(path)}" if folder else safe_path(path)).split("/")
        # A folder never has the name of a file: that folder segment gets the suffix.
        for i, segment in enumerate(parts[:-1]):
            number = 1
            while "/".join(parts[: i + 1]).casefold() in self._files:
                number += 1
                parts[i] = with_suffix(segment, number)
        wanted = "/".join(parts)
        name, number = wanted, 1
        while name.casefold() in self._files or name.casefold() in self._folders:
            number += 1
            name = with_suffix(wanted, number)
        self._take(name)
        return name

    def _take(self, name: str) -> None:
        key = name.casefold()
        self._files.add(key)
        parts = key.split("/")
        self._folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
