"""``meterflow portal`` serves the app through gunicorn (deploy/gunicorn.conf.py) and, with
--dev, through Flask's server; several gunicorn workers share sessions through PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from meterflow.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str, deadline_s: float = 30) -> tuple[int, dict[str, str], str]:
    """GET ``url``, retrying until the server is up."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=15) as response:
                return response.status, dict(response.headers), response.read().decode()
        except (urllib.error.URLError, OSError):
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def serve(
    portal_settings: Settings, tmp_path: Path, *args: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "METERFLOW_DATABASE_URL": str(portal_settings.database_url),
        "METERFLOW_DATA_DIR": str(tmp_path),
        "METERFLOW_PORTAL_COOKIE_SECURE": "false",
        "METERFLOW_PORTAL_WORKERS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "meterflow", "portal", "--bind", f"127.0.0.1:{port}", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.slow
def test_portal_runs_under_gunicorn_with_the_generated_secret(
    portal_settings: Settings, tmp_path: Path
) -> None:
    process, port = serve(portal_settings, tmp_path)
    try:
        status, headers, page = fetch(f"http://127.0.0.1:{port}/login")
        assert status == 200 and "Logowanie do e-Biura" in page
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert (tmp_path / "secret_key").exists()
    finally:
        stop(process)


@pytest.mark.slow
def test_portal_dev_server(portal_settings: Settings, tmp_path: Path) -> None:
    process, port = serve(portal_settings, tmp_path, "--dev")
    try:
        status, _, page = fetch(f"http://127.0.0.1:{port}/register")
        assert status == 200 and "Załóż konto w e-Biurze" in page
    finally:
        stop(process)
