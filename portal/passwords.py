"""Passwords: argon2id hashing, the password rule of the terms, and a common-password check."""

from __future__ import annotations

import dataclasses
import functools
import re
import string
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST, RFC_9106_LOW_MEMORY

from meterflow.errors import ConfigError
from meterflow.settings import Settings

CLASSES: dict[str, str] = {
    "digit": string.digits,
    "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZĄĆĘŁŃÓŚŹŻ",
    "lower": "abcdefghijklmnopqrstuvwxyząćęłńóśźż",
    "special": string.punctuation + " ",
}
# Only the most common bases count when a password merely decorates them ("Haslo123!").
DECORATED_BASE_TOP = 10_000
_DECORATION = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$")


@dataclasses.dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Length bounds and the character classes a password must contain."""

    min_length: int = 8
    max_length: int = 30
    classes: frozenset[str] = frozenset(CLASSES)

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordPolicy:
        """Build the policy of ``settings``.

        Raises ConfigError if a class is unknown or the bounds are impossible.
        """
        classes = frozenset(c.strip() for c in settings.portal_password_classes.split(",") if c)
        unknown = classes - set(CLASSES)
        if unknown:
            raise ConfigError(f"METERFLOW_PORTAL_PASSWORD_CLASSES: unknown {sorted(unknown)}")
        if not 1 <= settings.portal_password_min <= settings.portal_password_max:
            raise ConfigError("METERFLOW_PORTAL_PASSWORD_MIN must be 1..PORTAL_PASSWORD_MAX")
        return cls(settings.portal_password_min, settings.portal_password_max, classes)

    def problems(self, password: str, email: str = "") -> list[str]:
        """Return what breaks the rule: codes from too_short, too_long, digit, upper, lower,
        special, common, email (the password contains the login)."""
        found: list[str] = []
        if len(password) < self.min_length:
            found.append("too_short")
        if len(password) > self.max_length:
            found.append("too_long")
        found.extend(
            name for name in sorted(self.classes) if not any(ch in CLASSES[name] for ch in password)
        )
        if is_common(password):
            found.append("common")
        local = email.split("@", 1)[0].lower()
        if len(local) >= 4 and local in password.lower():
            found.append("email")
        return found


def is_common(password: str) -> bool:
    """Return True if the password, or its core stripped of digits and symbols, is common."""
    lowered = password.lower()
    ranks = _common_ranks()
    if lowered in ranks:
        return True
    core = _DECORATION.fullmatch(lowered)
    base = core.group(1) if core else lowered
    return bool(base) and ranks.get(base, DECORATED_BASE_TOP) < DECORATED_BASE_TOP


@functools.cache
def _common_ranks() -> dict[str, int]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    ranks: dict[str, int] = {}
    local = resources.files("portal").joinpath("common_passwords_pl.txt").read_text("utf-8")
    for rank, word in enumerate(w.strip().lower() for w in local.splitlines()):
        if word and not word.startswith("#"):
            ranks.setdefault(word, rank)
    for rank, word in enumerate(FREQUENCY_LISTS["passwords"]):
        ranks.setdefault(word, rank)
    return ranks


class Hasher:
    """argon2id hashing; ``profile`` "fast" is for tests only."""

    def __init__(self, profile: str = "default") -> None:
        params = CHEAPEST if profile == "fast" else RFC_9106_LOW_MEMORY
        self._hasher = argon2.PasswordHasher.from_parameters(params)
        self._dummy = self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        """Return the argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Return True if ``password`` matches ``stored``; with no hash, spend the same time."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Return True if ``stored`` was made with other parameters than today's."""
        return self._hasher.check_needs_rehash(stored)
