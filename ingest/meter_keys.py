"""The vendor's key file: CSV rows of meter id, manufacturer and AES-128 key.

Every row is checked before anything is imported; a bad row is reported by its line number
and reason, and no reason ever quotes a key.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

from meterflow.errors import ConfigError

ID_RE = re.compile(r"\d{1,8}")
MANUFACTURER_RE = re.compile(r"[A-Za-z]{3}")
HEX_RE = re.compile(r"[0-9A-Fa-f]*")
KEY_DIGITS = 32
# Words that name a column in a header row (English and Polish), checked in this order:
# "manufacturer" must win over "id" words, the key over both.
HEADER_WORDS = (
    ("key", ("key", "klucz", "aes")),
    ("manufacturer", ("manuf", "mfr", "mfct", "producent", "vendor")),
    ("id", ("id", "meter", "serial", "numer", "nr", "licznik")),
)
POSITIONAL = {"id": 0, "manufacturer": 1, "key": 2}


@dataclasses.dataclass(frozen=True, slots=True)
class MeterKey:
    """One meter of a key file; the key is left out of ``repr``."""

    manufacturer: str
    serial: str
    aes_key: bytes = dataclasses.field(repr=False)

    @property
    def meter_id(self) -> str:
        """The meter id as stored: ``<MFR>-<8 digits>``."""
        return f"{self.manufacturer}-{self.serial}"


@dataclasses.dataclass(frozen=True, slots=True)
class BadRow:
    """A row of a key file that cannot be imported, and why."""

    line: int
    reason: str


def parse_key_file(text: str) -> tuple[list[MeterKey], list[BadRow]]:
    """Return the meters of a key file and its bad rows; delimiter ``;`` or ``,``."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns = POSITIONAL
    keys: list[MeterKey] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if reader.line_num == _first_line(lines) and _is_header(cells):
            columns = _header_columns(cells)
            continue
        try:
            key = _parse_row(cells, columns)
        except ConfigError as exc:
            bad.append(BadRow(reader.line_num, str(exc)))
            continue
        if key.meter_id in seen:
            reason = f"meter {key.meter_id} duplicates line {seen[key.meter_id]}"
            bad.append(BadRow(reader.line_num, reason))
            continue
        seen[key.meter_id] = reader.line_num
        keys.append(key)
    return keys, bad


def load_key_file(path: Path) -> list[MeterKey]:
    """Read and check a key file.

    Raises ConfigError if it cannot be read, or naming every bad row if any row is bad.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1250", errors="replace")
    keys, bad = parse_key_file(text)
    if bad:
        lines = "\n".join(f"  line {row.line}: {row.reason}" for row in bad)
        raise ConfigError(f"{path}: {len(bad)} bad row(s), nothing imported:\n{lines}")
    if not keys:
        raise ConfigError(f"{path}: no meters in the file")
    return keys


def _first_line(lines: list[str]) -> int:
    return next((n for n, line in enumerate(lines, start=1) if line.strip()), 0)


def _is_header(cells: list[str]) -> bool:
    """A header has no cell that looks like a meter id or a key."""
    values = [cell.strip() for cell in cells]
    return not any(
        ID_RE.fullmatch(v) or (len(v) == KEY_DIGITS and HEX_RE.fullmatch(v)) for v in values
    )


def _shown(value: str) -> str:
    """Quote a short cell; a long one might be a key in the wrong column, so only count it."""
    return repr(value) if len(value) <= 12 else f"of {len(value)} characters"


def _header_columns(cells: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = cell.strip().lower()
        for column, words in HEADER_WORDS:
            if column not in found and any(word in name for word in words):
                found[column] = index
                break
    return found if len(found) == len(POSITIONAL) else POSITIONAL


def _parse_row(cells: list[str], columns: dict[str, int]) -> MeterKey:
    if len(cells) <= max(columns.values()):
        raise ConfigError(f"{len(cells)} column(s), want meter id, manufacturer and AES key")
    raw_id, raw_mfr, raw_key = (cells[columns[name]].strip() for name in POSITIONAL)
    if not ID_RE.fullmatch(raw_id):
        raise ConfigError(f"meter id {_shown(raw_id)} is not 1 to 8 digits")
    if not MANUFACTURER_RE.fullmatch(raw_mfr):
        raise ConfigError(f"manufacturer {_shown(raw_mfr)} is not 3 letters")
    if not HEX_RE.fullmatch(raw_key):
        raise ConfigError("AES key is not hexadecimal")
    if len(raw_key) != KEY_DIGITS:
        raise ConfigError(f"AES key has {len(raw_key)} hex digits, want {KEY_DIGITS}")
    return MeterKey(raw_mfr.upper(), raw_id.zfill(8), bytes.fromhex(raw_key))
