"""Dependencies point one way: domain/ is pure; the workflow module imports only the
standard library, temporalio and domain/ (the workflow sandbox rejects the rest)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def third_party(roots: set[str]) -> set[str]:
    return {r for r in roots if r not in sys.stdlib_module_names and r != "__future__"}


@pytest.mark.parametrize("path", sorted((ROOT / "domain").glob("*.py")), ids=lambda p: p.name)
def test_domain_is_pure(path):
    assert third_party(imported_roots(path)) <= {"domain", "pydantic"}


def test_workflow_module_imports_only_stdlib_temporalio_and_domain():
    roots = third_party(imported_roots(ROOT / "workflows" / "return_case.py"))
    assert roots <= {"temporalio", "domain", "workflows"}
    search_attributes = third_party(imported_roots(ROOT / "workflows" / "search_attributes.py"))
    assert search_attributes <= {"temporalio"}
