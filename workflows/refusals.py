"""Kept for callers that still import ``Refused`` or ``REFUSED`` from here (the e2e contract
test); both live in ``workflows.recording`` and ``domain.boundary``. Remove this module once
nothing imports it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.boundary import REFUSED
    from workflows.recording import Refused

__all__ = ["REFUSED", "Refused"]
