"""DuckDB as a contender: the Postgres table ATTACHed, COPY ... TO 's3://...'.

Run as its own process by bench/csv_export.py, so its memory and CPU are its
own: ``python bench/duckdb_copy.py EXTENSIONS DSN ENDPOINT FORMAT QUERY URL``.
It prints one JSON line: the seconds from ATTACH to the object complete in S3,
and the CPU seconds of the process over the same span (loading DuckDB and its
extensions is left out, as exportd's start-up is).

The postgres extension (``duckdb-extension-postgres``) reads the table with
binary COPY; httpfs (``duckdb-extension-httpfs``) writes the object as a
multipart upload. Both load offline, by path, from the PyPI packages: each
package holds ``extensions/v<duckdb version>/<name>.duckdb_extension``, and
the postgres one loads only under the name ``postgres_scanner``, so
``stage_extensions`` copies them into a folder under the names DuckDB expects.
"""

from __future__ import annotations

import importlib
import json
import resource
import shutil
import sys
import time
from pathlib import Path

# Package, and the name its extension file must carry for DuckDB to load it.
EXTENSIONS = {
    "duckdb_extension_postgres": "postgres_scanner",
    "duckdb_extension_httpfs": "httpfs",
}
# COPY options per format: what each writes by default, as a data team would ask.
OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "csv.gz": "FORMAT csv, HEADER true, COMPRESSION gzip",
    "jsonl": "FORMAT json",
    "parquet": "FORMAT parquet",
}


def available() -> str | None:
    """Why DuckDB cannot run here (a missing package), or None when it can."""
    for package in ("duckdb", *EXTENSIONS):
        try:
            importlib.import_module(package)
        except ImportError:
            return f"{package} is not installed (pip install -e '.[bench]')"
    return None


def stage_extensions(folder: Path) -> Path:
    """Copy the packaged extensions into ``folder`` under their loadable names."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    for package, name in EXTENSIONS.items():
        module = importlib.import_module(package)
        root = Path(str(module.__file__)).parent / "extensions" / f"v{duckdb.__version__}"
        [found] = root.glob("*.duckdb_extension")
        shutil.copy(found, folder / f"{name}.duckdb_extension")
    return folder


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(extensions: str, dsn: str, endpoint: str, fmt: str, query: str, url: str) -> None:
    import duckdb

    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    for name in EXTENSIONS.values():
        con.execute(f"LOAD '{Path(extensions) / name}.duckdb_extension'")
    # Timestamps with their offset in UTC, as exportd writes them.
    con.execute("SET TimeZone = 'UTC'")
    host = endpoint.removeprefix("http://")
    access, secret = sys.stdin.read().split()
    con.execute(
        "CREATE SECRET bench (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, URL_STYLE 'path', "
        "USE_SSL false, REGION 'us-east-1')".replace("?", "'{}'").format(access, secret, host)
    )
    started, cpu = time.perf_counter(), _cpu()
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(f"COPY ({query}) TO '{url}' ({OPTIONS[fmt]})")
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu": _cpu() - cpu}))


if __name__ == "__main__":
    main(*sys.argv[1:7])
