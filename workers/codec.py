"""Encryption of every Temporal payload (defence in depth: payloads carry no PII anyway).

Each payload is serialised whole (metadata and data) and sealed with AES-GCM under the
keyring's current key; the key id travels in clear metadata so older keys still decode
after a rotation. Decoding passes payloads that are not encrypted through unchanged
(search attributes are never encoded, and histories may predate encryption).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from store.keys import Keyring, UnknownKeyError
from store.keys import load_keyring as _load_keyring

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
PAYLOAD_KEY_DEV_FILE = "payload.key"
_NONCE_BYTES = 12


class PayloadDecryptionError(ValueError):
    """An encrypted payload cannot be decrypted: unknown key id, or altered bytes."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Keyring):
        self._keyring = keyring
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keyring.keys}

    @property
    def current_key_id(self) -> str:
        return self._keyring.current.key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.current_key_id
        cipher = self._ciphers[key_id]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                str(UnknownKeyError(key_id, self._keyring.key_ids, "a Temporal payload"))
            )
        try:
            plain = cipher.decrypt(
                payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], key_id.encode()
            )
        except InvalidTag:
            raise PayloadDecryptionError(
                f"a Temporal payload under key id {key_id!r} failed authentication: "
                "it was altered or sealed with another key of the same id"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def make_data_converter(keyring: Keyring) -> DataConverter:
    """The data converter of every client, worker, replayer and test: pydantic, this
    codec, and failure messages / stack traces moved into (encrypted) payloads."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def load_keyring(key: str | None, key_file: Path | None, dev_dir: Path | None) -> Keyring:
    """The payload keyring: ``HOMEWARD_PAYLOAD_KEY`` / ``HOMEWARD_PAYLOAD_KEY_FILE``, or
    in development a key generated once under ``dev_dir`` (with a loud warning)."""
    return _load_keyring(
        key, key_file, dev_dir, dev_file_name=PAYLOAD_KEY_DEV_FILE, setting="HOMEWARD_PAYLOAD_KEY"
    )
