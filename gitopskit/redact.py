"""The one redactor every message, log line and error passes through.

Secrets (tokens, private keys) are registered the moment they are read; from then on
:func:`redact` replaces them, and the encodings they travel in (base64 for HTTP Basic auth and
Kubernetes Secret data, URL-quoting), with ``***``. Code that derives a new form (an HTTP Basic
header, say) registers that form too.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import quote

MASK = "***"
_MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# A PEM or OpenSSH private key block, whether or not it was registered.
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL
)


def _forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe="")}
    raw = secret.encode()
    forms.add(base64.b64encode(raw).decode())
    return {f for f in forms if len(f) >= _MIN_SECRET_LENGTH}


def add_secret(secret: str | None) -> None:
    """Register a secret so that :func:`redact` masks it everywhere from now on.

    Args:
        secret: The value; None, empty and very short values are ignored.
    """
    global _pattern
    if not secret or len(secret) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        new = _forms(secret) | {line for line in secret.splitlines() if len(line) >= 16}
        if new <= _secrets:
            return
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and any private key block masked."""
    if not text:
        return text
    text = _PRIVATE_KEY_BLOCK.sub(f"-----BEGIN PRIVATE KEY-----{MASK}", text)
    pattern = _pattern
    return pattern.sub(MASK, text) if pattern else text


def clear() -> None:
    """Forget every registered secret (for tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None
