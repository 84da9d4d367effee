"""Member names from the data: the classic zip-slip names come out as relative paths
inside the folder, and every name is unique (without case) and bounded."""

from __future__ import annotations

import pytest

from exportd.export.member_names import (
    NAME_MAX_BYTES,
    SEGMENT_MAX_BYTES,
    MemberNames,
    safe_path,
    with_suffix,
)

HOSTILE = [
    ("../../etc/passwd", "etc/passwd"),
    ("/etc/passwd", "etc/passwd"),
    ("//server/share/x", "server/share/x"),
    ("..\\..\\windows\\win.ini", "windows/win.ini"),
    ("C:\\Windows\\System32\\x.dll", "C_/Windows/System32/x.dll"),
    ("C:evil.txt", "C_evil.txt"),
    ("a/../../b.txt", "a/b.txt"),
    ("a/./b/./c.txt", "a/b/c.txt"),
    ("./..", "file"),
    ("", "file"),
    ("...", "file"),
    ("x\x00y\x1b[31m.txt", "x_y_[31m.txt"),
    ("new\nline.txt", "new_line.txt"),
    ("invoice\u202efdp.exe", "invoice_fdp.exe"),  # a right-to-left override
    ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("com1.tar.gz", "_com1.tar.gz"),
    (" trailing. ", "trailing"),
    (".hidden", "hidden"),
    ("Cafe\u0301.txt", "Café.txt"),  # NFC
    ("\uff0e\uff0e\uff0f\uff0e\uff0e\uff3cwin.ini", "win.ini"),  # fullwidth ../..\\
    ("\ufe52\ufe52/x.txt", "x.txt"),  # small full stops
    ("C\uff1a\uff3cboot.ini", "C_/boot.ini"),  # a fullwidth drive colon
    ("\u2025/x.txt", "x.txt"),  # the two-dot leader is ".."
    ("photos/été 2024/IMG 1.jpg", "photos/été 2024/IMG 1.jpg"),
]


@pytest.mark.parametrize(("raw", "safe"), HOSTILE)
def test_hostile_names_become_relative_paths_inside_the_folder(raw: str, safe: str) -> None:
    assert safe_path(raw) == safe
    name = MemberNames().claim("files/receipts", raw)
    assert name == f"files/receipts/{safe}"
    segments = name.split("/")
    assert not name.startswith("/")
    assert "\\" not in name
    assert all(s not in ("", ".", "..") for s in segments)
    assert all(ord(c) >= 32 for c in name)


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_path("é" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= SEGMENT_MAX_BYTES
    deep = safe_path("/".join(["folder" * 30] * 10) + "/last.txt")
    assert deep.endswith("/last.txt")
    assert len(deep.encode()) <= NAME_MAX_BYTES
    assert all(s and s not in (".", "..") for s in deep.split("/"))


def test_collisions_get_a_numbered_suffix_without_regard_to_case() -> None:
    names = MemberNames(("manifest.json",))
    claimed = [
        names.claim("files/r", p)
        for p in ["a.pdf", "A.PDF", "a.pdf", "../a.pdf", "dir", "dir/x.txt", "b/c", "b"]
    ]
    assert claimed == [
        "files/r/a.pdf",
        "files/r/A (2).PDF",
        "files/r/a (3).pdf",
        "files/r/a (4).pdf",
        "files/r/dir",
        # "dir" is a file already: the folder of dir/x.txt may not share its name.
        "files/r/dir (2)/x.txt",
        "files/r/b/c",
        "files/r/b (2)",
    ]
    assert len({c.casefold() for c in claimed}) == len(claimed)
    assert names.claim("", "manifest.json") == "manifest (2).json"


def test_a_file_never_takes_the_name_of_a_folder_and_no_folder_that_of_a_file() -> None:
    names = MemberNames()
    assert names.claim("f", "dir") == "f/dir"
    # The member's folder "f/dir" is a file: extracting it would fail or overwrite.
    assert names.claim("f", "dir/x.txt") == "f/dir (2)/x.txt"
    assert names.claim("f", "dir/y.txt") == "f/dir (2)/y.txt"
    assert names.claim("f", "dir (2)") == "f/dir (2) (2)"


def test_with_suffix() -> None:
    assert with_suffix("a/b.tar", 2) == "a/b (2).tar"
    assert with_suffix("noext", 3) == "noext (3)"
    assert with_suffix(".x", 2) == ".x (2)"
