"""Every Temporal ``Payload`` inside a protobuf message (a history, one of its events):
where a request's values would be if homeward had forwarded them to Temporal. One walk
for every test that decodes a history to look for identity in it."""

from __future__ import annotations

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload


def payloads_in(message: Message, *, skip: frozenset[str] = frozenset()) -> list[Payload]:
    """The payloads of ``message`` and of every message it holds, but in fields named in
    ``skip`` (search attributes, indexed and so never encrypted, are searched raw)."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or descriptor.name in skip:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif descriptor.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                found += payloads_in(item, skip=skip)
    return found
