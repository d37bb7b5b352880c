"""The data converter of every workflow test: the production one (pydantic + encrypting
codec + encoded failure attributes) with a fixed test key, so recorded histories made
with it replay in later runs."""

from __future__ import annotations

from store.keys import Key, Keyring
from workers.codec import make_data_converter

TEST_PAYLOAD_KEY = Key.from_base64("RBPJmlhdc+kzWCkPEYUbKW3MV2C1oNpzMVF7vBDMXjg=")
TEST_KEYRING = Keyring(TEST_PAYLOAD_KEY)
TEST_DATA_CONVERTER = make_data_converter(TEST_KEYRING)
