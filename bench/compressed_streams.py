"""The compressing streams side by side: csv.gz, csv.zst at zstd levels and worker
threads, and a zip of one CSV member written by zipfile with zlib (how bundles were
written before) and by exportd's own zip writer with ISA-L.

Each contender is Postgres's COPY of the same rows, streamed through asyncpg into the
stream as the export engine does (``copy_from_query(output=stream.write)``), into a
sink that only counts bytes: what the upload adds is the same for every contender
(give or take its size), so the ratios here are the streams' own, and stricter than
an export's. Contenders take turns, ``--repeat`` rounds; the table gives each one's
median wall time, the CPU time of this process (the event loop and every thread)
over the same run, and the output's size.

    .venv/bin/python bench/compressed_streams.py --rows 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import add_admin_url, create_database  # noqa: E402
from bench.csv_export import TABLE, query  # noqa: E402
from exportd.export.streams import (  # noqa: E402
    BLOCK,
    COMPRESS_LEVEL,
    ByteSink,
    GzipStream,
    ZstdStream,
    fill_blocks,
)
from exportd.export.zip_stream import ZipBundle  # noqa: E402


class Count:
    """The sink: counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, data: bytes) -> None:
        self.bytes += len(data)


class _Spool:
    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass


class ZipfileBundle:
    """A zip of one member as exportd wrote it before its own writer: ``zipfile``
    streaming into a spool, zlib at level 1, a block at a time in a thread."""

    def __init__(self, out: ByteSink) -> None:
        self._out = out
        self._spool = _Spool()
        self._zip = zipfile.ZipFile(
            self._spool, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
        )
        info = zipfile.ZipInfo("rows.csv", date_time=datetime.now(UTC).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]
        self._file = self._zip.open(info, "w", force_zip64=True)
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        await fill_blocks(self._pending, data, self._flush)

    async def close(self) -> None:
        await self._flush()
        await asyncio.to_thread(self._file.close)
        await asyncio.to_thread(self._zip.close)
        await self._drain()

    async def _flush(self) -> None:
        if not self._pending:
            return
        block = bytes(self._pending)
        self._pending.clear()
        await asyncio.to_thread(self._file.write, block)
        await self._drain()

    async def _drain(self) -> None:
        data = bytes(self._spool.buffer)
        self._spool.buffer.clear()
        if data:
            await self._out.write(data)


class _Plain:
    async def write(self, data: bytes) -> None:
        await self.out.write(data)

    def __init__(self, out: ByteSink) -> None:
        self.out = out

    async def close(self) -> None:
        pass


class _OneMember:
    """A ``ZipBundle`` of one member, as a stream."""

    def __init__(self, out: ByteSink) -> None:
        self._bundle = ZipBundle(out)
        self._member = self._bundle.member("rows.csv")

    async def write(self, data: bytes) -> None:
        await self._member.write(data)

    async def close(self) -> None:
        await self._member.close()
        await self._bundle.close()


class Stream(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


Make = Callable[[ByteSink], Stream]


def zstd(level: int, threads: int) -> Make:
    return lambda out: ZstdStream(out, level=level, threads=threads)


CONTENDERS: dict[str, Make] = {
    "csv (no compression)": _Plain,
    "csv.gz (ISA-L 1)": GzipStream,
    **{
        f"csv.zst (level {level}, {threads} worker{'s' * (threads != 1)})": zstd(level, threads)
        for level in (1, 2, 3)
        for threads in (0, 1, 2)
    },
    "zip before (zipfile, zlib 1)": ZipfileBundle,
    "zip (own writer, ISA-L 1)": _OneMember,
}


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    size: int = 0


async def one_run(dsn: str, rows: int, make: Make) -> tuple[float, float, int]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET TimeZone = 'UTC'")
        sink = Count()
        started, cpu = time.perf_counter(), time.process_time()
        stream = make(sink)
        write: Callable[[bytes], Awaitable[None]] = stream.write
        await conn.copy_from_query(query(rows), output=write, format="csv", header=True)
        await stream.close()
        return time.perf_counter() - started, time.process_time() - cpu, sink.bytes
    finally:
        await conn.close()


async def prepare(admin: str, name: str, rows: int) -> str:
    dsn = await create_database(admin, name, fresh=False)
    conn = await asyncpg.connect(dsn)
    try:
        present = await conn.fetchval("SELECT to_regclass('bench.rows') IS NOT NULL")
        if not present or await conn.fetchval("SELECT count(*) FROM bench.rows") != rows:
            print(f"loading {rows:,} rows...", file=sys.stderr)
            await conn.execute(TABLE.replace("$1::bigint", str(int(rows))))
    finally:
        await conn.close()
    return dsn


async def main_async(args: argparse.Namespace) -> None:
    dsn = await prepare(args.admin_url, args.database, args.rows)
    only = [part for part in args.only.split(",") if part]
    chosen = {n: m for n, m in CONTENDERS.items() if not only or any(p in n for p in only)}
    runs = {name: Runs() for name in chosen}
    for round_ in range(args.repeat):
        print(f"round {round_ + 1} of {args.repeat}...", file=sys.stderr)
        for name, make in chosen.items():
            seconds, cpu, size = await one_run(dsn, args.rows, make)
            runs[name].seconds.append(seconds)
            runs[name].cpu.append(cpu)
            runs[name].size = size
    base = runs.get("csv.gz (ISA-L 1)")
    plain = runs.get("csv (no compression)")
    print(
        f"\nCOPY of {args.rows:,} rows ({plain.size / 1e6 if plain else 0:.0f} MB of CSV) "
        f"into each stream, median of {args.repeat}, blocks of {BLOCK // 1024} KiB:\n"
    )
    print("| stream | wall s | x csv.gz | CPU s (this process) | MB out | x csv.gz size |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in runs.items():
        wall = statistics.median(r.seconds)
        ratio = f"{wall / statistics.median(base.seconds):.2f}" if base else "-"
        size = f"{r.size / base.size:.3f}" if base else "-"
        print(
            f"| {name} | {wall:.2f} | {ratio} | {statistics.median(r.cpu):.2f} "
            f"| {r.size / 1e6:.1f} | {size} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--only", default="", help="only contenders whose name holds one of these (comma-separated)"
    )
    parser.add_argument(
        "--database", default="exportd_bench_streams", help="the benchmark's database (kept)"
    )
    add_admin_url(parser)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
