"""exportd check, run as a process against databases that refuse the connection, prints
neither database URL's secret."""

from __future__ import annotations

import os
import subprocess
import sys

SECRET = "s3cr3t-Pw"


def test_check_prints_neither_url_s_secret(tmp_path: object) -> None:
    """``exportd check`` against databases that refuse the connection: both URLs are
    named in its report, masked, whatever form their passwords take."""
    env = {
        **os.environ,
        "EXPORTD_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:1/queue?sslpassword={SECRET}x",
        "EXPORTD_SOURCE_DATABASE_URL": f"postgresql://app@127.0.0.1:1/src?pass%77ord={SECRET}y",
        "EXPORTD_S3_BUCKET": "exportd-nowhere",
        "EXPORTD_S3_ENDPOINT_URL": "http://127.0.0.1:1",
        "EXPORTD_S3_ACCESS_KEY_ID": "a",
        "EXPORTD_S3_SECRET_ACCESS_KEY": "b",
        "EXPORTD_DEFINITIONS": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "exportd", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    printed = done.stdout + done.stderr
    assert done.returncode != 0
    assert "127.0.0.1:1/queue" in printed
    assert SECRET not in printed
