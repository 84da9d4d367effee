"""The systemd unit in deploy/ passes systemd-analyze verify, run against this environment's
exportd."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

DEPLOY = ROOT / "deploy"


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that the executables exist: point the unit at this
    # environment's exportd instead of the /opt install path.
    exe = Path(sys.executable).parent / "exportd"
    text = (DEPLOY / "systemd" / "exportd.service").read_text()
    (tmp_path / "exportd.service").write_text(text.replace("/opt/exportd/bin/exportd", str(exe)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "exportd.service")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    mine = [line for line in result.stderr.splitlines() if "exportd.service" in line]
    assert result.returncode == 0, result.stderr
    assert mine == [], result.stderr
