"""What must hold once the fault suite's queue has drained.

Each check returns a list of problems (empty when all is well), so that one
failing run reports everything it found, with the seed, at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg

from exportd import database
from tests.support.fault_world import KINDS, PARAMS, Dataset

TERMINAL = ("completed", "failed", "cancelled", "expired")


@dataclass(frozen=True)
class Expected:
    """A dataset as a direct export of its query gives it: as CSV or as JSON,
    whichever the object holds (running the query once, not twice, halves
    the checks' time)."""

    rows: int
    csv: bytes = b""  # COPY ... (FORMAT csv, HEADER), when the object holds CSV
    objects: list[Any] | None = None  # row_to_json of each row, parsed, when JSON


def wants_csv(fmt: str) -> bool:
    """Whether an object (or a zip member) of this format is compared as CSV."""
    return fmt in ("csv", "csv.gz")


class DirectExport:
    """The reference: the kind's query run by the test itself, with COPY for
    CSV and row_to_json for JSON, in an export's session settings."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> DirectExport:
        self._conn = await database.connect(self._dsn)
        await self._conn.execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601';"
            " SET fault.pace = '0'"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        await self._conn.close()

    async def dataset(
        self, kind: str, dataset: Dataset, owner: str, params: Any, *, as_csv: bool
    ) -> Expected:
        assert self._conn is not None
        names = PARAMS[kind]
        sql = dataset.for_direct(names)
        args = [owner, *(int(params[n]) for n in names)]
        if as_csv:
            chunks: list[bytes] = []

            async def sink(chunk: bytes) -> None:
                chunks.append(bytes(chunk))

            status = await self._conn.copy_from_query(
                sql, *args, output=sink, format="csv", header=True
            )
            return Expected(int(status.split()[-1]), csv=b"".join(chunks))
        texts = await self._conn.fetch(f"SELECT row_to_json(t)::text FROM ({sql}) AS t", *args)
        objects = [json.loads(r[0]) for r in texts]
        return Expected(len(objects), objects=objects)


def _jsonl(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def content_problems(fmt: str, body: bytes, expected: list[Expected]) -> list[str]:
    """How the object differs from the direct export (nothing when equal)."""
    single = expected[0]
    try:
        if fmt == "csv":
            return [] if body == single.csv else ["csv differs from a direct COPY"]
        if fmt == "csv.gz":
            ok = gzip.decompress(body) == single.csv
            return [] if ok else ["csv.gz decompressed differs from a direct COPY"]
        if fmt == "jsonl":
            return [] if _jsonl(body) == single.objects else ["jsonl rows differ"]
        if fmt == "jsonl.gz":
            ok = _jsonl(gzip.decompress(body)) == single.objects
            return [] if ok else ["jsonl.gz rows differ"]
        if fmt == "json":
            return [] if json.loads(body) == single.objects else ["json rows differ"]
    except (ValueError, OSError, EOFError) as exc:
        return [f"{fmt} object does not parse: {exc!r}"]
    return [f"unexpected format {fmt}"]


async def expected_for(direct: DirectExport, row: Any) -> list[tuple[str, Expected]]:
    """(zip member name, expected content) of each dataset of the job's kind."""
    out = []
    params = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    for dataset in KINDS[row["kind"]]:
        fmt = dataset.member_format if row["format"] == "zip" else row["format"]
        want = await direct.dataset(
            row["kind"], dataset, row["owner"], params, as_csv=wants_csv(fmt)
        )
        ext = "csv" if dataset.member_format == "csv" else "jsonl"
        out.append((f"{dataset.name}.{ext}", want))
    return out


def object_problems(row: Any, body: bytes, expected: list[tuple[str, Expected]]) -> list[str]:
    """The completed job's row against its object and the direct export."""
    problems: list[str] = []
    if hashlib.sha256(body).hexdigest() != row["checksum_sha256"]:
        problems.append("checksum_sha256 is not the SHA-256 of the object")
    if len(body) != row["size_bytes"]:
        problems.append(f"size_bytes {row['size_bytes']} but the object has {len(body)}")
    rows = sum(e.rows for _, e in expected)
    if row["row_count"] != rows:
        problems.append(f"row_count {row['row_count']} but a direct export has {rows}")
    if row["format"] == "zip":
        problems += _zip_members_problems(body, expected)
    else:
        problems += content_problems(row["format"], body, [e for _, e in expected])
    return problems


def _zip_members_problems(body: bytes, expected: list[tuple[str, Expected]]) -> list[str]:
    problems: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
            manifest = json.loads(archive.read("manifest.json"))
            members = {m["name"]: m for m in manifest["members"]}
            if names != [name for name, _ in expected] + ["manifest.json"]:
                problems.append(f"zip members {names}")
            for name, want in expected:
                data = archive.read(name)
                same = data == want.csv if name.endswith(".csv") else _jsonl(data) == want.objects
                if not same:
                    problems.append(f"zip member {name} differs from a direct export")
                entry = members.get(name, {})
                if entry.get("rows") != want.rows:
                    problems.append(f"manifest rows of {name}: {entry.get('rows')} != {want.rows}")
                if entry.get("sha256") != hashlib.sha256(data).hexdigest():
                    problems.append(f"manifest sha256 of {name} is not the member's")
    except (ValueError, KeyError, zipfile.BadZipFile) as exc:
        problems.append(f"zip does not read: {exc!r}")
    return problems


def history_problems(transitions: list[Any], final: dict[Any, str]) -> list[str]:
    """The audit trail: one completion per completed job, terminal states kept."""
    problems: list[str] = []
    completions: Counter[Any] = Counter()
    by_job: dict[Any, list[Any]] = defaultdict(list)
    for t in transitions:
        by_job[t["job_id"]].append(t)
        if t["new_state"] == "completed":
            completions[t["job_id"]] += 1
        old, new = t["old_state"], t["new_state"]
        if old in TERMINAL and (old, new) != ("completed", "expired"):
            problems.append(f"job {t['job_id']} left {old} for {new} (worker {t['worker_id']})")
    for job_id, state in final.items():
        want = 1 if state == "completed" else 0
        if completions[job_id] != want:
            problems.append(f"job {job_id} ({state}) completed {completions[job_id]} times")
        if by_job[job_id] and by_job[job_id][-1]["new_state"] != state:
            problems.append(f"job {job_id}: last recorded state is not its state {state}")
    return problems
