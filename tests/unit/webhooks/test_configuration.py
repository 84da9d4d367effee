"""Webhook settings and a kind's webhook_url: checked at load, secrets never shown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exportd.definitions.loader import DefinitionError, definitions_from_text
from exportd.definitions.webhook_url import shown, webhook_url_problem
from exportd.settings.environment import load_settings
from exportd.settings.model import SettingsError
from exportd.webhooks.targets import configuration_problem, target_of
from tests.support.webhook_receiver import new_secret

KIND = """
[kinds.k]
query = "SELECT 1 WHERE :owner <> ''"
webhook_url = {url!r}
"""


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/x",
        "file:///etc/passwd",
        "host/hook",
        "https:///no-host",
        "https://host/a b",
        "https://host/#frag",
        "https://host:99999/",
        "https://host/" + "a" * 2100,
    ],
)
def test_only_http_urls_with_a_host(url: str) -> None:
    assert webhook_url_problem(url) is not None
    with pytest.raises(DefinitionError, match="webhook_url"):
        definitions_from_text(KIND.format(url=url))
    with pytest.raises(SettingsError, match="EXPORTD_WEBHOOK_URL"):
        load_settings(None, webhook_url=url, webhook_secret=new_secret())


def test_a_kind_s_own_url_else_the_default() -> None:
    kinds = definitions_from_text(KIND.format(url="https://app.example/hooks?token=t"))
    assert target_of("k", kinds, "http://default/") == "https://app.example/hooks?token=t"
    assert target_of("other", kinds, "http://default/") == "http://default/"
    assert target_of("other", kinds, None) is None
    assert shown("https://user:pw@app.example:8443/hooks?token=t") == "https://app.example:8443"


def test_a_url_needs_a_secret() -> None:
    with pytest.raises(SettingsError, match="EXPORTD_WEBHOOK_URL needs EXPORTD_WEBHOOK_SECRET"):
        load_settings(None, webhook_url="https://app.example/hooks")
    kinds = definitions_from_text(KIND.format(url="https://app.example/hooks"))
    assert "kind(s) k" in str(configuration_problem(kinds, None, 0))
    assert configuration_problem(kinds, None, 1) is None
    assert configuration_problem({}, None, 0) is None


def test_secrets_are_validated_and_never_shown() -> None:
    secret = new_secret()
    settings = load_settings(
        None,
        webhook_url="https://app.example/hooks",
        webhook_secret=f"{secret} {new_secret()}",
        webhook_retry_period="3600",
    )
    assert len(settings.webhook_keys()) == 2
    assert settings.webhook_retry_period == timedelta(hours=1)
    assert secret not in repr(settings)
    assert secret not in str(settings.model_dump())
    with pytest.raises(SettingsError, match="does not start with whsec_") as refused:
        load_settings(None, webhook_secret="hunter2-is-my-secret")
    assert "hunter2" not in str(refused.value)
    assert load_settings(None, webhook_url="", webhook_secret="").webhook_url is None
