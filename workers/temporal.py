"""The one data converter and client factory every client, worker and test uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter

from store.keys import Keyring
from workers.codec import load_keyring, make_data_converter
from workers.settings import Settings


def payload_keyring(settings: Settings) -> Keyring:
    secret = settings.payload_key.get_secret_value() if settings.payload_key else None
    return load_keyring(secret, settings.payload_key_file, settings.dev_key_dir)


def data_converter(settings: Settings) -> DataConverter:
    return make_data_converter(payload_keyring(settings))


async def connect(address: str, namespace: str, converter: DataConverter) -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=converter)


async def connect_with(settings: Settings) -> Client:
    return await connect(settings.temporal_address, settings.temporal_namespace,
                         data_converter(settings))
