"""Dependencies point one way: domain/ is pure; workflow modules import only the standard
library, temporalio and domain/ (the workflow sandbox rejects the rest); the API and the
store import no workflow code."""

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


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", modules("domain"), ids=_rel)
def test_domain_is_pure(path):
    """domain/ and its aggregates (domain/journey/, domain/reintegration/)."""
    assert third_party(imported_roots(path)) <= {"domain", "pydantic"}


def test_the_kernel_imports_no_aggregate():
    """The kernel is under both aggregates: it imports nothing else of domain/."""
    assert imported_roots(ROOT / "domain" / "kernel.py") & {"domain"} == set()


@pytest.mark.parametrize("path", modules("workflows"), ids=lambda p: p.name)
def test_workflow_modules_import_only_stdlib_temporalio_and_domain(path):
    # pydantic: the models a workflow passes (the sandbox accepts it; no I/O library).
    assert third_party(imported_roots(path)) <= {"temporalio", "domain", "workflows",
                                                 "pydantic"}


def test_search_attributes_need_only_temporalio():
    assert third_party(imported_roots(ROOT / "workflows" / "search_attributes.py")) <= {
        "temporalio"}


@pytest.mark.parametrize("package", ["api", "store"])
def test_api_and_store_import_no_workflow_module(package):
    """The API reaches workflows through the Temporal client and the message contract, the
    store knows nothing of them: neither imports workflow code."""
    importing = [p.relative_to(ROOT) for p in modules(package)
                 if "workflows" in imported_roots(p)]
    assert importing == []


def test_the_layering_walk_sees_the_modules():
    """The walk above looks at real files (a moved package must not empty it silently)."""
    assert {p.name for p in modules("workflows")} >= {"return_case.py", "reintegration.py"}
    assert {_rel(p) for p in modules("domain")} >= {
        "domain/kernel.py", "domain/catalogue.py",
        "domain/journey/events.py", "domain/journey/decider.py",
        "domain/reintegration/events.py", "domain/reintegration/decider.py"}
    assert len(modules("api")) > 5 and len(modules("store")) > 5


@pytest.mark.parametrize("path", modules("api/routes"), ids=lambda p: p.name)
def test_routes_reach_temporal_and_the_database_only_through_the_service(path):
    """Routes parse, call the service, shape the answer: no Temporal client, no SQL, and no
    route imports another route."""
    roots = imported_roots(path)
    assert not roots & {"temporalio", "sqlalchemy", "asyncpg"}
    source = path.read_text()
    assert "from api.routes" not in source and "import api.routes" not in source
