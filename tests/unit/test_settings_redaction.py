"""Database URLs are never printed with a secret in them: one masking function, every
form a password can take, both URLs, and what the commands print."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from exportd.settings import redact_text, redact_url

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            f"postgresql://app:{SECRET}@db:5432/queue",
            "postgresql://app:***@db:5432/queue",
        ),
        (
            f"postgresql://app@db/queue?password={SECRET}",
            "postgresql://app@db/queue?password=***",
        ),
        (
            f"postgresql://app@db/queue?sslmode=require&sslpassword={SECRET}&application_name=x",
            "postgresql://app@db/queue?sslmode=require&sslpassword=***&application_name=x",
        ),
        # The driver decodes keys: pass%77ord is password to it.
        (
            f"postgresql://app@db/queue?pass%77ord={SECRET}",
            "postgresql://app@db/queue?pass%77ord=***",
        ),
        (
            f"postgresql://app@db/queue?password=a&password={SECRET}",
            "postgresql://app@db/queue?password=***&password=***",
        ),
        (
            "postgresql://app:s3cr%40t%3Apw@db/queue?PASSWORD=s3cr%40t",
            "postgresql://app:***@db/queue?PASSWORD=***",
        ),
        (
            f"postgresql://app:{SECRET}@h1:5432,h2:5433/queue",
            "postgresql://app:***@h1:5432,h2:5433/queue",
        ),
        (f"postgresql://app:p@ss:{SECRET}@db/queue", "postgresql://app:***@db/queue"),
        ("postgresql://app@db/queue?sslmode=require", "postgresql://app@db/queue?sslmode=require"),
        (f"postgresql://[::1:{SECRET}@db/q", "<a database URL that does not parse>"),
    ],
)
def test_every_form_of_a_password_is_masked(url: str, masked: str) -> None:
    assert redact_url(url) == masked


def test_a_message_quoting_the_url_or_its_secret_is_masked() -> None:
    url = f"postgresql://app:{SECRET}@db/queue?sslpassword=k%20ey"
    message = f"could not connect to {url}: password {SECRET} refused; sslpassword 'k ey'"
    assert redact_text(message, url) == (
        "could not connect to postgresql://app:***@db/queue?sslpassword=***: "
        "password *** refused; sslpassword '***'"
    )
    assert redact_text("nothing secret", "postgresql://app:@db/q") == "nothing secret"


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
