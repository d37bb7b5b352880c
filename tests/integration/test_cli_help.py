"""Every `homeward ...` command the README names exists, and `homeward --help` lists them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from workers.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
HOMEWARD = Path(sys.executable).parent / "homeward"


def documented_commands() -> list[tuple[str, ...]]:
    """The command words of every `homeward ...` in the README (`token create|revoke`
    is two commands); arguments and options after the words are left out."""
    found: set[tuple[str, ...]] = set()
    for snippet in re.findall(r"`homeward ([^`]+)`", README.read_text()):
        words = []
        for word in snippet.split():
            if not re.fullmatch(r"[a-z][a-z|-]*", word):
                break
            words.append(word)
        if not words:  # `homeward --help`
            continue
        *path, last = words
        for alternative in last.split("|"):
            found.add((*path, alternative))
    return sorted(found)


def test_the_readme_names_the_administration_commands():
    commands = documented_commands()
    for expected in [("org", "add"), ("user", "add"), ("token", "create"), ("token", "revoke"),
                     ("migrate",), ("vault", "rotate-master-key"), ("retention", "list"),
                     ("retention", "erase"), ("store", "verify"), ("dev",)]:
        assert expected in commands, expected


@pytest.mark.parametrize("command", documented_commands(), ids=" ".join)
def test_every_documented_command_exists(command, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])
    # An unknown word is an "invalid choice" (exit 2); a known command line shows its help.
    assert exited.value.code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"usage: homeward {command[0]}")


def test_help_lists_every_command():
    done = subprocess.run([str(HOMEWARD), "--help"], capture_output=True, text=True,
                          timeout=300)  # generous: only stops a hung command
    assert done.returncode == 0, done.stderr
    listed = set(re.search(r"\{([a-z,-]+)\}", done.stdout).group(1).split(","))
    assert {c[0] for c in documented_commands()} <= listed
