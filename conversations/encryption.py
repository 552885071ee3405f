"""Text sealed at rest with Fernet: the keys (CHATKIT_ENCRYPTION_KEYS), seal and unseal.

A sealed value reads `fernet:<key id>:<Fernet token>`; the key id (8 hex digits of the key's
SHA-256) names the key that sealed it, so a key's remaining rows can be counted and a value
is opened with its own key rather than by trying each. Plaintext written while encryption was
off is stored as it is, except text that itself begins with `fernet:` or `plain:` (a visitor
can type anything): that is stored behind `plain:`. So every stored value reads one way only.
The empty string stays empty: `= ''` is how the hot path asks "no title yet", "no reply text".

Each turn reads back its conversation's recent messages, so each process keeps the texts it
last sealed or opened (bounded: `_OPENED_MAX` of them, each up to `_OPENED_TEXT_MAX`
characters), by cipher and token: a turn opens only what it has not seen. It holds nothing
the process does not hold anyway while it serves those messages, and a token opened with
another key or tampered with is never found there.
"""

import functools
import hashlib
import threading
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SEALED = "fernet:"
ESCAPED = "plain:"
_KEY_ID_CHARS = 8


class KeyMissing(Exception):
    """A sealed value whose key is not in CHATKIT_ENCRYPTION_KEYS (or the keys are unset)."""


@dataclass(frozen=True)
class Keyring:
    primary: tuple[str, Fernet] | None  # (key id, cipher) that seals; None: encryption off
    by_id: dict[str, Fernet]

    @property
    def on(self) -> bool:
        return self.primary is not None


_OPENED_MAX = 4096
_OPENED_TEXT_MAX = 4096
_opened: dict[tuple[Fernet, str], str] = {}  # (cipher, token) -> text, oldest first
_opened_lock = threading.Lock()


def _remember(cipher: Fernet, token: str, text: str) -> None:
    if len(text) > _OPENED_TEXT_MAX:
        return
    with _opened_lock:
        if len(_opened) >= _OPENED_MAX:
            del _opened[next(iter(_opened))]
        _opened[cipher, token] = text


def key_id(key: str) -> str:
    """The short id stored beside each value sealed with `key`."""
    return hashlib.sha256(key.encode()).hexdigest()[:_KEY_ID_CHARS]


@functools.cache
def keyring_for(keys: tuple[str, ...]) -> Keyring:
    """The keyring of `keys`, newest first (built once per set of keys)."""
    ciphers = [(key_id(key), Fernet(key)) for key in keys]
    return Keyring(primary=ciphers[0] if ciphers else None, by_id=dict(ciphers))


def keyring() -> Keyring:
    """The keys from the settings, newest (the one that seals) first."""
    return keyring_for(tuple(settings.CHATKIT_ENCRYPTION_KEYS))


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


def sealed_key_id(stored: str) -> str | None:
    """The id of the key that sealed `stored`; None for plaintext."""
    if not is_sealed(stored):
        return None
    return stored[len(SEALED) : len(SEALED) + _KEY_ID_CHARS]


def seal(text: str, *, ring: Keyring | None = None) -> str:
    """`text` as it is stored: sealed with the primary key when encryption is on."""
    if not text:
        return text
    ring = ring or keyring()
    if ring.primary is None:
        return ESCAPED + text if text.startswith((SEALED, ESCAPED)) else text
    kid, cipher = ring.primary
    token = cipher.encrypt(text.encode()).decode()
    _remember(cipher, token, text)
    return f"{SEALED}{kid}:{token}"


def unseal(stored: str, *, ring: Keyring | None = None) -> str:
    """The text a stored value holds. Raises KeyMissing when its key is not configured, and
    cryptography's InvalidToken when a configured key does not open it (tampered)."""
    if stored.startswith(ESCAPED):
        return stored[len(ESCAPED) :]
    if not is_sealed(stored):
        return stored
    ring = ring or keyring()
    kid = sealed_key_id(stored)
    cipher = ring.by_id.get(kid)
    if cipher is None:
        raise KeyMissing(f"text sealed with key {kid}, which CHATKIT_ENCRYPTION_KEYS lacks")
    token = stored[len(SEALED) + _KEY_ID_CHARS + 1 :]
    text = _opened.get((cipher, token))
    if text is None:
        text = cipher.decrypt(token.encode()).decode()
        _remember(cipher, token, text)
    return text


def sealed_length(chars: int) -> int:
    """The longest stored form of a text of up to `chars` characters (4 UTF-8 bytes each):
    Fernet's 57 bytes around the padded AES blocks, in base64, behind the prefix and key id."""
    token_bytes = 57 + 16 * (4 * chars // 16 + 1)
    return len(SEALED) + _KEY_ID_CHARS + 1 + 4 * -(-token_bytes // 3)


__all__ = [
    "ESCAPED",
    "SEALED",
    "InvalidToken",
    "KeyMissing",
    "Keyring",
    "is_sealed",
    "key_id",
    "keyring",
    "keyring_for",
    "seal",
    "sealed_key_id",
    "sealed_length",
    "unseal",
]
