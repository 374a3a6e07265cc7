"""Customer uploads (complaint attachments): size and type limits, stored in the database,
served only as downloads with ``nosniff`` (never inline, never as HTML).

The type is decided by the file's first bytes, not by the browser's claim or the name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from flask import Response, abort
from werkzeug.datastructures import FileStorage

from meterflow.errors import MeterflowError
from portal.db import Conn

MAX_BYTES = 5 * 1024 * 1024
# content type -> (magic prefixes, allowed extensions)
TYPES: dict[str, tuple[tuple[bytes, ...], tuple[str, ...]]] = {
    "application/pdf": ((b"%PDF-",), (".pdf",)),
    "image/jpeg": ((b"\xff\xd8\xff",), (".jpg", ".jpeg")),
    "image/png": ((b"\x89PNG\r\n\x1a\n",), (".png",)),
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRejected(MeterflowError):
    """An uploaded file is empty, too large or of a type that is not accepted.

    ``reason`` is ``empty``, ``too_large``, ``type`` or ``name_mismatch``; ``filename`` is
    the file's safe name (views word the refusal in the visitor's language from these).
    """

    def __init__(self, reason: str, filename: str, message: str) -> None:
        super().__init__(f"{filename}: {message}")
        self.reason = reason
        self.filename = filename


def sniff(data: bytes, filename: str) -> str:
    """Return the content type of ``data`` if accepted under ``filename``.

    Raises UploadRejected if the bytes are not PDF/JPEG/PNG or the extension disagrees.
    """
    lowered = filename.lower()
    for content_type, (magics, extensions) in TYPES.items():
        if data.startswith(magics):
            if not lowered.endswith(extensions):
                raise UploadRejected(
                    "name_mismatch", filename, f"the name does not match a {content_type} file"
                )
            return content_type
    raise UploadRejected("type", filename, "only PDF, JPEG and PNG files are accepted")


def safe_filename(filename: str) -> str:
    """Return an ASCII file name safe for a Content-Disposition header."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")
    return cleaned[:100] or "file"


def save_upload(conn: Conn, customer_id: int, file: FileStorage, max_bytes: int = MAX_BYTES) -> int:
    """Store ``file`` for ``customer_id`` and return its id.

    Raises UploadRejected if it is empty, larger than ``max_bytes`` or of a refused type.
    """
    data = file.stream.read(max_bytes + 1)
    name = safe_filename(file.filename or "")
    if not data:
        raise UploadRejected("empty", name, "the file is empty")
    if len(data) > max_bytes:
        raise UploadRejected("too_large", name, f"larger than {max_bytes // (1024 * 1024)} MB")
    content_type = sniff(data, name)
    row = conn.execute(
        "INSERT INTO portal_uploads (customer_id, filename, content_type, size_bytes, sha256,"
        " content) VALUES (%s, %s, %s, %s, %s, %s) RETURNING upload_id",
        (customer_id, name, content_type, len(data), hashlib.sha256(data).digest(), data),
    ).fetchone()
    assert row is not None
    return int(row["upload_id"])


def send_upload(conn: Conn, upload_id: int, customer_id: int | None) -> Response:
    """Answer with the upload as a download; 404 unless it belongs to ``customer_id``
    (None: staff, who may see every upload)."""
    row = conn.execute(
        "SELECT filename, content_type, content FROM portal_uploads WHERE upload_id = %s"
        " AND (%s::bigint IS NULL OR customer_id = %s)",
        (upload_id, customer_id, customer_id),
    ).fetchone()
    if row is None:
        abort(404)
    response = Response(bytes(row["content"]), mimetype=row["content_type"])
    response.headers["Content-Disposition"] = f'attachment; filename="{row["filename"]}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
