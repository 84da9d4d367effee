"""The built wheel carries the SQL and the demo files the code loads at run time."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from exportd.queue.sql import migrations, queries

ROOT = Path(__file__).resolve().parents[3]


def test_wheel_ships_sql_and_demo_files(tmp_path: Path) -> None:
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
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("exportd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "exportd/sql/queries.sql" in names
    for migration in (ROOT / "sql" / "migrations").glob("*.sql"):
        assert f"exportd/sql/migrations/{migration.name}" in names
    assert {"exportd/demo/definitions.toml", "exportd/demo/data.sql"} <= names
    # The dashboard's templates and assets: the daemon serves them from the package.
    ui = ROOT / "exportd" / "ui"
    shipped = [*ui.glob("templates/*.html"), *ui.glob("static/*")]
    assert len(shipped) > 5
    for path in shipped:
        assert f"exportd/ui/{path.relative_to(ui).as_posix()}" in names
    assert not any(name.startswith("tests/") for name in names)

    # Installed from the wheel, the package finds its SQL inside itself.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from exportd.queue.sql import sql_dir, queries, migrations;"
            "print(sql_dir()); print(len(migrations())); print(len(queries().names()))",
        ],
        env={"PYTHONPATH": str(site), "PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    where, count, named = probe.stdout.split()
    assert Path(where) == site / "exportd" / "sql"
    assert int(count) == len(migrations())
    assert int(named) == len(queries().names())
