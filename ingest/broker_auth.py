"""Mosquitto's password file and ACL file: hashing, rules per user, atomic rewrites.

Both files are rewritten whole (temp file + rename) under an advisory lock, keeping every
entry meterflow does not touch, so the broker never reads a half-written file.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from meterflow.errors import ConfigError
from schemas.envelope import GATEWAY_RE, TOPIC_PREFIX

Role = Literal["gateway", "ingest", "commands"]
ROLES: tuple[Role, ...] = ("gateway", "ingest", "commands")

# What mosquitto_passwd of Mosquitto 2.0 writes: "$7$<iterations>$<salt>$<hash>", PBKDF2
# with HMAC-SHA512, a 12-byte salt, a 64-byte hash, both standard base64.
HASH_ID = "7"
ITERATIONS = 101
SALT_BYTES = 12
ACL_HEADER = (
    "# Written by `meterflow gateways` and `meterflow broker`; edits to these users are"
    " overwritten.\n"
)


def generate_password() -> str:
    """Return a new random password of 192 bits, URL-safe."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Return ``password`` hashed in Mosquitto's ``$7$`` PBKDF2-SHA512 format."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    encoded_salt = base64.b64encode(salt).decode()
    return f"${HASH_ID}${iterations}${encoded_salt}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Return whether ``password`` matches a ``$7$`` hash."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != HASH_ID or not parts[2].isdigit():
        return False
    try:
        salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(digest, expected)


def check_username(name: str) -> str:
    """Return ``name`` if it can be a broker user and a topic level.

    Raises ConfigError if it is empty, too long or holds characters other than
    letters, digits, ``_``, ``.`` and ``-`` (``+``, ``#`` and ``/`` would widen the ACL).
    """
    if not GATEWAY_RE.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a valid name: use 1-64 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )
    return name


def rules_for(name: str, role: Role) -> list[str]:
    """Return the ACL lines of user ``name`` acting as ``role``."""
    if role == "gateway":
        own = f"{TOPIC_PREFIX}/{name}"
        return [
            f"topic write {own}/mbus",
            f"topic write {own}/wmbus",
            f"topic write {own}/cmd/ack",
            f"topic read {own}/cmd",
        ]
    if role == "ingest":
        # Mosquitto 2 checks a shared subscription against the filter without its
        # "$share/<group>/" prefix; the explicit form serves brokers that check it whole.
        return [f"topic read {TOPIC_PREFIX}/+/+", f"topic read $share/+/{TOPIC_PREFIX}/+/+"]
    return [f"topic write {TOPIC_PREFIX}/+/cmd", f"topic read {TOPIC_PREFIX}/+/cmd/ack"]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (via ``<path>.lock``) while inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` by writing a temp file and renaming it.

    An existing file keeps its mode and owner; a new one gets mode 0640 and the folder's
    group, so a broker running as that group can read it.
    """
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    try:
        info = path.stat()
        mode, uid, gid = info.st_mode & 0o7777, info.st_uid, info.st_gid
    except FileNotFoundError:
        mode, uid, gid = 0o640, os.getuid(), parent.stat().st_gid
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        if os.getuid() == 0:
            os.chown(temp, uid, gid)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_passwords(path: Path) -> dict[str, str]:
    """Return the users of a password file in file order, each with its hash line part."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        user, _, hashed = line.partition(":")
        entries[user] = hashed
    return entries


def set_password(path: Path, user: str, password: str) -> None:
    """Add ``user`` to the password file or replace its password."""
    with locked(path):
        entries = read_passwords(path)
        entries[check_username(user)] = hash_password(password)
        atomic_write(path, "".join(f"{name}:{hashed}\n" for name, hashed in entries.items()))


def remove_password(path: Path, user: str) -> bool:
    """Remove ``user`` from the password file; return whether it was there."""
    with locked(path):
        entries = read_passwords(path)
        found = entries.pop(user, None) is not None
        if found:
            atomic_write(path, "".join(f"{name}:{hashed}\n" for name, hashed in entries.items()))
        return found


def read_acl(path: Path) -> dict[str, list[str]]:
    """Return the rule lines of an ACL file per user; lines before any ``user`` go under ``""``.

    Raises ConfigError if a line is neither a comment, ``user``, ``topic`` nor ``pattern``.
    """
    users: dict[str, list[str]] = {}
    if not path.exists():
        return users
    current = ""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user" and len(words) == 2:
            current = words[1]
            users.setdefault(current, [])
        elif words[0] in {"topic", "pattern"} and len(words) in {2, 3}:
            users.setdefault(current, []).append(" ".join(words))
        else:
            raise ConfigError(f"{path}:{number}: cannot read ACL line {line!r}")
    return users


def format_acl(users: dict[str, list[str]]) -> str:
    """Return the ACL file text of ``users`` as ``read_acl`` returns them."""
    blocks = [ACL_HEADER]
    for user, rules in users.items():
        head = [f"user {user}"] if user else []
        blocks.append("".join(f"{line}\n" for line in head + rules))
    return "\n".join(blocks)


def role_of(path: Path, user: str) -> Role | None:
    """Return the role whose rules ``user`` has in the ACL file, None if absent or custom."""
    current = read_acl(path).get(user)
    if current is None:
        return None
    for role in ROLES:
        if current == rules_for(user, role):
            return role
    return None


def set_acl_user(path: Path, user: str, role: Role) -> None:
    """Give ``user`` exactly the rules of ``role`` in the ACL file, keeping other users."""
    with locked(path):
        users = read_acl(path)
        users[check_username(user)] = rules_for(user, role)
        atomic_write(path, format_acl(users))


def remove_acl_user(path: Path, user: str) -> bool:
    """Remove ``user`` and its rules from the ACL file; return whether it was there."""
    with locked(path):
        users = read_acl(path)
        found = users.pop(user, None) is not None
        if found:
            atomic_write(path, format_acl(users))
        return found


def reload_broker(pid_file: Path) -> int:
    """Send SIGHUP to the broker whose pid is in ``pid_file`` (it re-reads both files).

    Raises ConfigError if the file is missing, holds no pid, or no such process runs.
    """
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except FileNotFoundError:
        raise ConfigError(f"broker pid file {pid_file} does not exist") from None
    except ValueError:
        raise ConfigError(f"broker pid file {pid_file} does not hold a process id") from None
    except ProcessLookupError:
        raise ConfigError(f"no broker runs with the pid in {pid_file}") from None
    except PermissionError:
        raise ConfigError(f"not allowed to signal the broker in {pid_file}") from None
    return pid
