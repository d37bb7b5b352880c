"""Answers that more than one router gives, so that no route imports another."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class TaskDone(BaseModel):
    case_id: str
    task_id: uuid.UUID
    event_types: list[str]
