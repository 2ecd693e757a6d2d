"""Encryption at rest for integration tokens and secrets (cryptography's MultiFernet).

FIELD_ENCRYPTION_KEYS lists Fernet keys, newest first: new values are always
encrypted with the first, any of them decrypts, and `rotate()` re-encrypts a
value with the newest (`manage.py rotate_encryption_keys`). The stack refuses
to start without a valid key; the embedded mode (`make run`) derives a
development key from SECRET_KEY so that it needs no configuration.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored value no key can decrypt (a key was dropped before rotating)."""


def _keys() -> list[str]:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]
    if keys:
        return keys
    if settings.EMBEDDED:
        derived = hashlib.sha256(("precis-field-encryption:" + settings.SECRET_KEY).encode()).digest()
        return [base64.urlsafe_b64encode(derived).decode()]
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS is required (comma-separated Fernet keys, newest first). Generate one with: "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    )


def fernet() -> MultiFernet:
    fernets = []
    for index, key in enumerate(_keys()):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry #{index + 1} is not a valid Fernet key (32 url-safe base64 bytes)."
            ) from None
    return MultiFernet(fernets)


def check_keys() -> None:
    """Called at start-up: a missing or invalid key is a clear error, not a later crash."""
    fernet()


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode("utf-8")).decode("ascii") if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None


def rotate(token: str) -> str:
    """Re-encrypt with the newest key (a no-op change in meaning)."""
    if not token:
        return ""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None


def is_current(token: str) -> bool:
    """Already encrypted with the newest key?"""
    if not token:
        return True
    try:
        Fernet(_keys()[0]).decrypt(token.encode("ascii"))
        return True
    except InvalidToken:
        return False
