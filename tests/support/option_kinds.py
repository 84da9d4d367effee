"""Kinds with option defaults and labels, run by a whole daemon, for the tests of the
job options. A definition's ``[kinds.NAME.options]`` and ``[kinds.NAME.labels]`` become
these ``Kind`` fields; here they are set directly."""

from __future__ import annotations

import dataclasses
import gzip
import io
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from exportd.definitions.kinds import Definitions
from exportd.definitions.loader import definitions_from_text
from exportd.definitions.options.model import DEFAULT_OPTIONS, JobOptions
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import download_job, insert_job, wait_for_state
from tests.support.zstd_reader import unzstd


@dataclasses.dataclass(frozen=True)
class Optioned:
    """A kind of one dataset, ``dataset``, reading ``query`` with these defaults."""

    options: JobOptions = DEFAULT_OPTIONS
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    member_format: str = "csv"


def definitions(
    query: str, kinds: Mapping[str, Optioned], dataset: str = "items", *, handler: bool = False
) -> Definitions:
    """One kind per entry of ``kinds``, each a dataset ``dataset`` reading ``query`` (or,
    with ``handler``, run by the handler ``query`` names)."""
    source = f"handler = {query!r}" if handler else f"query = '''\n{query}\n'''"
    text = "".join(
        f"[kinds.{name}.datasets.{dataset}]\nformat = {kind.member_format!r}\n{source}\n"
        for name, kind in kinds.items()
    )
    loaded = definitions_from_text(text)
    return Definitions(
        dataclasses.replace(loaded[name], options=kind.options, labels=dict(kind.labels))
        for name, kind in kinds.items()
    )


@dataclasses.dataclass
class Outcome:
    row: Any  # the job's row
    body: bytes  # the object as downloaded, when the job completed

    def content(self, fmt: str, member: str = "items") -> bytes:
        """The file inside: gunzipped, decompressed, or the zip's dataset member."""
        if fmt.endswith(".gz"):
            return gzip.decompress(self.body)
        if fmt.endswith(".zst"):
            return unzstd(self.body)
        if fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(self.body)) as bundle:
                names = [n for n in bundle.namelist() if n.startswith(member + ".")]
                assert len(names) == 1, bundle.namelist()
                return bundle.read(names[0])
        return self.body


async def run_jobs(
    endpoint: S3Endpoint,
    bucket: str,
    dsn: str,
    pool: asyncpg.Pool,
    defined: Definitions,
    jobs: Sequence[tuple[str, str]],
    owner: str = "alice",
) -> dict[tuple[str, str], Outcome]:
    """Each (kind, format) of ``jobs`` inserted as a plain INSERT, run by a daemon to
    its end, and its object downloaded when it completed."""
    settings = s3_settings(endpoint, bucket, database_url=dsn, **FAST)
    ids: dict[tuple[str, str], uuid.UUID] = {}
    for kind, fmt in jobs:
        ids[kind, fmt] = await insert_job(pool, owner=owner, kind=kind, fmt=fmt, max_attempts=1)
    outcomes: dict[tuple[str, str], Outcome] = {}
    async with running_daemon(settings, defined) as daemon:
        for key, job_id in ids.items():
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
            body = b""
            if row["state"] == "completed":
                body, _ = await download_job(daemon.api_port, job_id)
            outcomes[key] = Outcome(row, body)
    return outcomes
