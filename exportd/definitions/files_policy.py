"""A kind's policy for its files datasets (``output = "files"``). Pure, no I/O.

``missing_files``: what a missing or changed object does (``"fail"``: the job fails as
``not_found``; ``"list"``: the manifest lists it and the export completes).
``files_sources``: ``bucket/prefix`` entries that narrow, for this kind, the sources
the daemon allows (``EXPORTD_FILES_SOURCES``); a key must lie under both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FILES_KEYS = frozenset({"missing_files", "files_sources"})
MISSING_POLICIES = ("fail", "list")
# Where a files dataset's objects go in the zip: files/<dataset>/<path from the row>.
FILES_FOLDER = "files"


def parse_files_policy(
    table: Mapping[str, object], outputs: Sequence[str], found: list[str]
) -> tuple[str, tuple[str, ...]]:
    """The kind's ``missing_files`` and ``files_sources``; problems appended to ``found``."""
    has_files = "files" in outputs
    for key in FILES_KEYS:
        if key in table and not has_files:
            found.append(f'{key} applies to a kind with an output = "files" dataset')
    policy = table.get("missing_files", "fail")
    if policy not in MISSING_POLICIES:
        found.append(f"missing_files must be one of fail, list, got {policy!r}")
        policy = "fail"
    raw = table.get("files_sources", [])
    sources: list[str] = []
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        found.append('files_sources must be a list of "bucket/prefix" strings')
    else:
        for entry in raw:
            problem = source_problem(entry)
            if problem is not None:
                found.append(f"files_sources entry {entry!r} {problem}")
            elif entry not in sources:
                sources.append(entry)
    assert isinstance(policy, str)
    return policy, tuple(sources)


def source_problem(entry: str) -> str | None:
    """What is wrong with the source ``entry`` (``bucket``, ``bucket/`` or
    ``bucket/prefix``, one trailing ``/`` allowed), or None. A prefix with an empty,
    ``.`` or ``..`` segment (``uploads/a//b``, ``uploads/./a``) is refused: no key
    may hold such a segment, so it would allow nothing, silently."""
    bucket, _, prefix = entry.partition("/")
    if not bucket or any(c.isspace() or not c.isprintable() for c in entry):
        return "must be bucket/prefix: a bucket name, then a key prefix, with no spaces"
    if prefix and any(s in ("", ".", "..") for s in prefix.removesuffix("/").split("/")):
        return "must be bucket/prefix with no empty, '.' or '..' segment in its prefix"
    return None


def files_folder(dataset: str) -> str:
    """The folder of a files dataset's members in the zip."""
    return f"{FILES_FOLDER}/{dataset}"
