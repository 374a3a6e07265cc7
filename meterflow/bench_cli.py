"""``meterflow bench NAME [ARGS...]``: run one of the benchmarks in ``bench/`` of a checkout."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Any

from meterflow.errors import ConfigError

CHECKOUT = Path(__file__).resolve().parent.parent


def names() -> list[str]:
    """Return the benchmark names found in the checkout's ``bench/`` folder."""
    folder = CHECKOUT / "bench"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def register(subparsers: Any) -> None:
    """Add the ``bench`` sub-command."""
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark of bench/ (figures as ratios to a same-run baseline)",
        description="Run bench/NAME.py; the arguments after NAME go to the benchmark.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="one of: " + ", ".join(names()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options")
    parser.set_defaults(handler=bench)


def bench(args: argparse.Namespace, settings: object) -> int:
    """Run the named benchmark, or every one in turn when no name is given.

    Raises ConfigError if there is no benchmark of that name.
    """
    chosen = [args.name] if args.name else names()
    for name in chosen:
        if name not in names():
            raise ConfigError(f"no benchmark {name!r}; choose one of {', '.join(names())}")
        print(f"== bench.{name}", flush=True)
        sys.argv = [f"bench/{name}.py", *args.args]
        sys.path.insert(0, str(CHECKOUT))
        runpy.run_module(f"bench.{name}", run_name="__main__")
    return 0
