"""The built distribution: typed, carrying its statements, depending on httpx alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1]


def test_the_wheel_is_typed_light_and_finds_its_statements(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(CLIENT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("exportd_client-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    assert {"exportd_client/py.typed", "exportd_client/queries.sql"} <= names
    assert not any(name.startswith("tests/") for name in names)
    [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist") or []
    # Required: httpx only; every driver and OpenTelemetry are extras.
    assert [r for r in requires if "extra ==" not in r] == ["httpx>=0.27"]

    # Installed from the wheel (httpx from this environment), it reads its statements.
    site = tmp_path / "site"
    archive.extractall(site)
    import httpx

    beside = Path(httpx.__file__).parents[1]
    probe = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path[:0] = sys.argv[1:];"
            "import exportd_client, exportd_client._sql as s;"
            "print(exportd_client.__file__); print(sorted(s.statements()))",
            str(site),
            str(beside),
        ],
        env={"PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    where, statements = probe.stdout.splitlines()
    assert Path(where).parent == site / "exportd_client"
    assert statements == "['enqueue', 'enqueue_traced', 'live_duplicate']"
