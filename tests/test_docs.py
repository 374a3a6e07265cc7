"""Every ``meterflow`` command is documented in README.md (sqlite-utils' test_docs habit)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.cli import build_parser

README = (Path(__file__).parent.parent / "README.md").read_text()


def command_paths(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[str]:
    """Yield every leaf command path such as ``gateways add``."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield prefix.strip()
        return
    for action in actions:
        for name, child in action.choices.items():
            yield from command_paths(child, f"{prefix} {name}")


@pytest.mark.parametrize("path", sorted(command_paths(build_parser())))
def test_every_command_is_in_the_readme(path: str) -> None:
    assert f"meterflow {path}" in README, f"README.md does not document `meterflow {path}`"
