"""Database URLs are never printed with a secret in them: one masking function, every
form a password can take, both URLs."""

from __future__ import annotations

import pytest

from exportd.redaction import redact_text, redact_url

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
