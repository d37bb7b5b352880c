"""Keys and keyrings: parsing, ids, configuration precedence, development keys."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from store.keys import (
    Key,
    KeyConfigError,
    Keyring,
    UnknownKeyError,
    key_id_of,
    load_master_keyring,
)
from workers.codec import load_keyring as load_payload_keyring

A = Key(b"a" * 32)
B = Key(b"b" * 32)


def test_key_id_is_derived_from_the_key_and_does_not_reveal_it() -> None:
    assert A.key_id == key_id_of(b"a" * 32) == Key.from_base64(A.to_base64()).key_id
    assert A.key_id != B.key_id
    assert len(A.key_id) == 16
    assert A.to_base64() not in repr(A) and "aaaa" not in repr(A)


@pytest.mark.parametrize("raw", [b"short", b"x" * 31, b"x" * 33])
def test_a_key_is_exactly_32_bytes(raw: bytes) -> None:
    with pytest.raises(KeyConfigError, match="32 bytes"):
        Key(raw)


def test_urlsafe_base64_is_accepted_and_garbage_refused() -> None:
    raw = bytes(range(200, 232))
    assert Key.from_base64(base64.urlsafe_b64encode(raw).decode()).secret == raw
    with pytest.raises(KeyConfigError, match="not valid base64"):
        Key.from_base64("not base64 at all!")


def test_keyring_parses_current_first_then_older_keys_with_comments() -> None:
    text = f"# rotated 2026-11\n{B.to_base64()}  # new\n\n{A.to_base64()}\n"
    ring = Keyring.parse(text)
    assert ring.current == B and ring.older == (A,)
    assert Keyring.parse(f"{B.to_base64()},{A.to_base64()}") == ring
    assert ring.get(A.key_id) == A


def test_keyring_refuses_duplicates_and_empty_text_and_names_unknown_ids() -> None:
    with pytest.raises(KeyConfigError, match="twice"):
        Keyring(A, (A,))
    with pytest.raises(KeyConfigError, match="no key"):
        Keyring.parse("# only a comment\n")
    with pytest.raises(UnknownKeyError, match=f"'nope'.*known key ids: {A.key_id}"):
        Keyring(A).get("nope")


def test_a_key_string_wins_over_nothing_and_conflicts_with_a_file(tmp_path: Path) -> None:
    assert load_master_keyring(A.to_base64(), None, tmp_path).current == A
    assert not any(tmp_path.iterdir())  # no development key made when one is configured
    key_file = tmp_path / "k"
    key_file.write_text(B.to_base64())
    assert load_master_keyring(None, key_file, None).current == B
    with pytest.raises(KeyConfigError, match="HOMEWARD_MASTER_KEY or HOMEWARD_MASTER_KEY_FILE"):
        load_master_keyring(A.to_base64(), key_file, None)


def test_missing_or_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="no key configured: set HOMEWARD_MASTER_KEY"):
        load_master_keyring(None, None, None)
    with pytest.raises(KeyConfigError, match="HOMEWARD_PAYLOAD_KEY_FILE .*missing"):
        load_payload_keyring(None, tmp_path / "missing", None)
    with pytest.raises(KeyConfigError, match="^HOMEWARD_MASTER_KEY: a key must be 32 bytes"):
        load_master_keyring(base64.b64encode(b"short").decode(), None, None)


def test_development_key_is_generated_once_private_and_loudly(tmp_path: Path) -> None:
    dev_dir = tmp_path / ".homeward"
    with capture_logs() as logs:
        first = load_master_keyring(None, None, dev_dir)
    [warning] = logs
    assert warning["log_level"] == "warning"
    assert "DEVELOPMENT KEY" in warning["event"]
    assert warning["key_id"] == first.current.key_id
    assert first.current.to_base64() not in str(logs)
    key_file = dev_dir / "master.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert [p.name for p in dev_dir.iterdir()] == ["master.key"]

    with capture_logs() as logs:
        again = load_master_keyring(None, None, dev_dir)
    assert again == first and logs == []

    payload = load_payload_keyring(None, None, dev_dir)
    assert (dev_dir / "payload.key").exists()
    assert payload.current != first.current
