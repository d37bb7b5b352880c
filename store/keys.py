"""Symmetric keys and keyrings: the vault's master key (KEK) and the Temporal payload key.

A key is 32 random bytes (AES-256), configured as base64. Its id is derived from the key
(a truncated HMAC), so an id never needs configuring and a wrong key is recognised by id
before anything is decrypted. A keyring holds the current key, which encrypts, and older
keys, which only decrypt until everything has moved to the current one.

Configuration: a comma-separated list of base64 keys, or a file with one key per line
(``#`` comments allowed); the first key is the current one. Rotation: put the new key
first, keep the old one after it, re-wrap / let payloads age out, then drop the old key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

KEY_BYTES = 32
MASTER_KEY_DEV_FILE = "master.key"

log = structlog.get_logger(__name__)


class KeyConfigError(Exception):
    """A key is missing, malformed or ambiguously configured."""


class UnknownKeyError(KeyError):
    """Data was encrypted under a key id that the keyring does not hold."""

    def __init__(self, key_id: str, known: Iterable[str], what: str = "data"):
        self.key_id = key_id
        super().__init__(
            f"{what} is encrypted under key id {key_id!r}, which is not in the keyring "
            f"(known key ids: {', '.join(known) or 'none'})"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def key_id_of(key: bytes) -> str:
    return hmac.new(key, b"homeward/key-id/v1", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Key:
    secret: bytes = field(repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise KeyConfigError(f"a key must be {KEY_BYTES} bytes, got {len(self.secret)}")
        object.__setattr__(self, "key_id", key_id_of(self.secret))

    @classmethod
    def generate(cls) -> Key:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_base64(cls, text: str) -> Key:
        text = text.strip()
        altchars = b"-_" if any(c in text for c in "-_") else None
        try:
            secret = base64.b64decode(text, altchars=altchars, validate=True)
        except (binascii.Error, ValueError) as error:
            raise KeyConfigError("a key is not valid base64") from error
        return cls(secret)

    def to_base64(self) -> str:
        return base64.b64encode(self.secret).decode()


@dataclass(frozen=True)
class Keyring:
    current: Key
    older: tuple[Key, ...] = ()

    def __post_init__(self) -> None:
        ids = [k.key_id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyConfigError("the same key appears twice in the keyring")

    @property
    def keys(self) -> tuple[Key, ...]:
        return (self.current, *self.older)

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self.keys]

    def get(self, key_id: str, what: str = "data") -> Key:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise UnknownKeyError(key_id, self.key_ids, what)

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Keys separated by commas or newlines, current first; ``#`` starts a comment."""
        lines = (line.split("#", 1)[0] for line in text.splitlines())
        parts = [p.strip() for line in lines for p in line.split(",") if p.strip()]
        if not parts:
            raise KeyConfigError("no key found")
        keys = [Key.from_base64(p) for p in parts]
        return cls(keys[0], tuple(keys[1:]))


def load_keyring(
    key: str | None,
    key_file: Path | None,
    dev_dir: Path | None,
    *,
    dev_file_name: str,
    setting: str,
) -> Keyring:
    """The keyring from a key string, else a key file, else (development only) a key
    generated once under ``dev_dir``. ``setting`` names the variables in error messages
    (``HOMEWARD_MASTER_KEY``)."""
    if key and key_file:
        raise KeyConfigError(f"set {setting} or {setting}_FILE, not both")
    if key:
        return _parse(key, f"{setting}")
    if key_file:
        try:
            text = Path(key_file).read_text()
        except OSError as error:
            raise KeyConfigError(f"{setting}_FILE {key_file}: {error.strerror}") from error
        return _parse(text, f"{setting}_FILE {key_file}")
    if dev_dir is None:
        raise KeyConfigError(f"no key configured: set {setting} or {setting}_FILE")
    return _parse(_dev_key_text(Path(dev_dir) / dev_file_name, setting), str(dev_dir))


def _parse(text: str, source: str) -> Keyring:
    try:
        return Keyring.parse(text)
    except KeyConfigError as error:
        raise KeyConfigError(f"{source}: {error}") from None


def _dev_key_text(path: Path, setting: str) -> str:
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = Key.generate().to_base64() + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    try:
        # link() fails if the name exists: of two processes starting together, one key
        # wins and both use it; nobody ever reads a half-written file.
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text()
    finally:
        tmp.unlink()
    log.warning(
        "DEVELOPMENT KEY GENERATED: data encrypted with it is only as safe as this file; "
        f"never use it in production, set {setting} or {setting}_FILE instead",
        path=str(path),
        key_id=key_id_of(Key.from_base64(text).secret),
    )
    return text


def load_master_keyring(key: str | None, key_file: Path | None, dev_dir: Path | None) -> Keyring:
    """The vault's master key (KEK) ring: ``HOMEWARD_MASTER_KEY`` / ``..._FILE``."""
    return load_keyring(
        key, key_file, dev_dir, dev_file_name=MASTER_KEY_DEV_FILE, setting="HOMEWARD_MASTER_KEY"
    )
