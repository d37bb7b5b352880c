"""`homeward vault rotate-master-key` and `homeward retention` as an administrator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from store.event_store import EventStore
from store.events import NewEvent
from store.keys import Key, Keyring
from store.vault import ErasedPerson, PersonRecord, PersonVault, ReadPurpose

HOMEWARD = str(Path(sys.executable).parent / "homeward")


def _run(database_url: str, *args: str, master: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    env.update(HOMEWARD_DATABASE_URL=database_url, HOMEWARD_MASTER_KEY=master,
               HOMEWARD_LOG_FORMAT="json")
    # The bound only stops a hung command from hanging the suite; generous, because a
    # loaded machine may take many seconds to start a Python process and connect.
    return subprocess.run([HOMEWARD, *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _event(kind: str, when: datetime) -> NewEvent:
    return NewEvent(uuid.uuid4(), kind, 1, {}, "mission-rs", "coord.rs", when)


async def test_rotation_rewraps_keys_and_everything_stays_readable(database_url, engine):
    old, new = Key.generate(), Key.generate()
    vault = PersonVault(engine, Keyring(old))
    for n in range(3):
        await vault.record(f"case-{n}", PersonRecord(given_names=f"Ana{n}"),
                           by_org="mission-rs", by_actor="coord.rs")

    refused = _run(database_url, "vault", "rotate-master-key", master=new.to_base64())
    assert refused.returncode == 2 and "HOMEWARD_MASTER_KEY='NEW,OLD'" in refused.stderr

    done = _run(database_url, "vault", "rotate-master-key",
                master=f"{new.to_base64()},{old.to_base64()}")
    assert done.returncode == 0, done.stderr
    assert "3 of 3 data keys re-wrapped" in done.stdout

    rotated = PersonVault(engine, Keyring(new))  # the old key is gone from the ring
    for n in range(3):
        view = await rotated.read(f"case-{n}", purpose=ReadPurpose.CASE_REVIEW,
                                  reader_org="mission-rs", reader_actor="coord.rs")
        assert view.record.given_names == f"Ana{n}"


async def test_retention_lists_then_erases_only_with_confirmation(database_url, engine):
    key = Key.generate()
    store = EventStore(engine)
    vault = PersonVault(engine, Keyring(key), store)
    now = datetime.now(UTC)
    cases = {
        "closed-long-ago": [("case.referral_registered", now - timedelta(days=2300)),
                            ("outcome.assistance_declined", now - timedelta(days=2200))],
        "closed-last-year": [("case.referral_registered", now - timedelta(days=400)),
                             ("outcome.assistance_declined", now - timedelta(days=365))],
        "still-active": [("case.referral_registered", now - timedelta(days=3000))],
    }
    for case_id, events in cases.items():
        await vault.record(case_id, PersonRecord(given_names="X"), by_org="mission-rs",
                           by_actor="coord.rs")
        await store.append(case_id, None, [_event(kind, when) for kind, when in events])

    listed = _run(database_url, "retention", "list", master=key.to_base64())
    assert listed.returncode == 0, listed.stderr
    assert "closed-long-ago" in listed.stdout and "1 case(s) past retention" in listed.stdout
    assert "closed-last-year" not in listed.stdout and "still-active" not in listed.stdout

    unconfirmed = _run(database_url, "retention", "erase", master=key.to_base64())
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert not await vault.is_erased("closed-long-ago")

    erased = _run(database_url, "retention", "erase", "--yes", master=key.to_base64())
    assert erased.returncode == 0, erased.stderr
    assert "erased 1" in erased.stdout and "1/1" in erased.stdout
    assert await vault.is_erased("closed-long-ago")
    for kept in ("closed-last-year", "still-active"):
        assert not await vault.is_erased(kept)
    gone = await vault.read("closed-long-ago", purpose=ReadPurpose.CASE_REVIEW,
                            reader_org="mission-rs", reader_actor="coord.rs")
    assert isinstance(gone, ErasedPerson)
    types = [e.event_type for e in await store.read_stream("closed-long-ago")]
    assert types[-1] == "identity.erased"


async def test_erase_refuses_an_active_journey_then_erases_after_the_outcome(database_url,
                                                                           engine):
    key = Key.generate()
    store = EventStore(engine)
    vault = PersonVault(engine, Keyring(key), store)
    await vault.record("case-e", PersonRecord(given_names="Ana"), by_org="mission-rs",
                       by_actor="coord.rs")
    await store.append("case-e", None, [_event("case.referral_registered", datetime.now(UTC))])
    args = ("vault", "erase", "case-e", "--reason", "person_request", "--org", "mission-rs",
            "--actor", "coord.rs")

    unconfirmed = _run(database_url, *args, master=key.to_base64())
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    refused = _run(database_url, *args, "--yes", master=key.to_base64())
    assert refused.returncode == 2 and "active" in refused.stderr
    assert not await vault.is_erased("case-e")

    await store.append("case-e", None, [_event("outcome.assistance_declined",
                                               datetime.now(UTC))])
    done = _run(database_url, *args, "--yes", master=key.to_base64())
    assert done.returncode == 0, done.stderr
    assert "identity erased (person_request)" in done.stdout
    assert await vault.is_erased("case-e")
