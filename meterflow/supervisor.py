"""Run a set of child processes for ``meterflow up`` and stop them all cleanly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class Supervisor:
    """Starts named processes, copies their output to a log file each, stops them in reverse."""

    def __init__(self, log_dir: Path, env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.children: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` as the child ``name``; its output goes to ``<log_dir>/<name>.log``."""
        logfile = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(argv),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env, **(env or {})},
            start_new_session=True,
        )
        self.children.append((name, process, logfile))
        log.info("started %s (pid %d), log in %s", name, process.pid, logfile.name)

    def meterflow(self, name: str, *args: str) -> None:
        """Start ``meterflow ARGS...`` with this interpreter as the child ``name``."""
        self.start(name, [sys.executable, "-m", "meterflow", *args])

    def failed(self) -> list[tuple[str, int]]:
        """Return (name, exit code) of every child that has exited."""
        return [(n, p.returncode) for n, p, _ in self.children if p.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the children one by one, newest first: SIGTERM, then SIGKILL after ``timeout``.

        One at a time, so that a consumer finishes its work before the broker it talks to goes.
        """
        for name, process, logfile in reversed(self.children):
            if process.poll() is None:
                log.info("stopping %s", name)
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %.0f s; killing it", name, timeout)
                    process.kill()
                    process.wait()
            logfile.close()
        self.children.clear()
