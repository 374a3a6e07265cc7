"""Private Mosquitto and PostgreSQL instances for tests that stop, kill or reconfigure them.

The shared services on 127.0.0.1:1883 and :5432 are never stopped by a test; a test that needs
to take a server down starts its own with these helpers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin"
# Pytest's tmp_path is private to root; the servers run as their own users and need a folder
# they can reach.
BASE = Path(tempfile.gettempdir()) / "meterflow-test-services"


def service_dir(owner: str) -> Path:
    """Return a new folder owned by ``owner`` that the service user can reach."""
    BASE.mkdir(mode=0o755, exist_ok=True)
    BASE.chmod(0o755)
    path = Path(tempfile.mkdtemp(prefix=f"{owner}-", dir=BASE))
    path.chmod(0o755)
    shutil.chown(path, owner, owner)
    return path


def free_port() -> int:
    """Return a TCP port on loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on ``port``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PrivateMosquitto:
    """A Mosquitto broker of one test, on its own port, with persistence in its own folder.

    ``extra_conf`` is appended to the configuration (limits, password file, ACL...).
    """

    def __init__(self, extra_conf: str = "", port: int | None = None) -> None:
        self.workdir = workdir = service_dir("mosquitto")
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {workdir}/\n"
            f"log_dest file {workdir}/mosquitto.log\n" + extra_conf
        )

    @property
    def url(self) -> str:
        """The broker's ``mqtt://`` URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)])
        wait_for_port(self.port)

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (saves persistence) or, with ``kill``, SIGKILL."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> PrivateMosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of one test, run as the ``postgres`` user on its own port."""

    def __init__(self, port: int | None = None) -> None:
        self.workdir = service_dir("postgres")
        self.port = port or free_port()
        self.datadir = self.workdir / "pgdata"
        self._as_postgres(
            [str(PG_BIN / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(self.datadir)]
        )

    @property
    def url(self) -> str:
        """The cluster's ``postgresql://`` URL (database ``postgres``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: list[str]) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts queries."""
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-o",
                options,
                "-l",
                str(self.workdir / "postgres.log"),
                "-w",
                "start",
            ]
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``fast`` ends sessions; ``immediate`` is a crash)."""
        self._as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"]
        )

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)
