"""The one redactor: registered secrets and private keys never survive it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from gitopskit import redact as redactor


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    redactor.clear()
    yield
    redactor.clear()


def test_registered_secret_and_its_encodings_are_masked() -> None:
    secret = "glpat-AbCdEf/123+xyz"
    redactor.add_secret(secret)
    text = f"a {secret} b {quote(secret, safe='')} c {base64.b64encode(secret.encode()).decode()}"
    assert redactor.redact(text) == "a *** b *** c ***"


def test_private_key_blocks_are_masked_even_unregistered() -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    assert "b3BlbnNzaC1rZXktdjEAAAA" not in redactor.redact(f"x\n{key}\ny")


def test_short_values_are_not_registered() -> None:
    redactor.add_secret("abc")
    assert redactor.redact("abc") == "abc"
