"""Secrets at rest: payment provider keys and webhook signing secrets are stored encrypted.

Fernet (AES-128-CBC with an HMAC-SHA256 tag) with the key from `PAYMENT_SECRETS_KEY` (a Fernet
key: `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`);
unset, the key is derived from `SECRET_KEY`, so changing `SECRET_KEY` then makes the stored
secrets unreadable (connect the providers again, or set `PAYMENT_SECRETS_KEY` first).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the current key (the key changed)."""


def _fernet() -> Fernet:
    key = settings.PAYMENT_SECRETS_KEY
    if not key:
        digest = hashlib.sha256(b"payment-provider-secrets:" + settings.SECRET_KEY.encode())
        key = base64.urlsafe_b64encode(digest.digest()).decode()
    return Fernet(key)


def encrypt_secret(value: str) -> str:
    """The encrypted form of a secret, as stored."""
    return _fernet().encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    """The secret back from its stored form."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("the stored secret cannot be read with the current key") from exc
