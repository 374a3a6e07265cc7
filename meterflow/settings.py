"""Settings, read once from ``METERFLOW_*`` environment variables into a frozen object."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meterflow.errors import ConfigError

PREFIX = "METERFLOW_"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of meterflow; the field ``foo_bar`` is ``METERFLOW_FOO_BAR``."""

    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_protocol: str = "5"
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    ingest_client_id: str = "ingest-1"
    ingest_batch_frames: int = 5000
    ingest_batch_ms: int = 200
    ingest_receive_maximum: int = 1000
    ingest_session_expiry_s: int = 7 * 24 * 3600
    ingest_shared: bool = True
    # AES contexts a decoding thread keeps, one per meter key (about 1.7 KiB each).
    ingest_decrypt_cache_keys: int = 262_144
    metrics_port: int = 9108
    broker_password_file: Path | None = None
    broker_acl_file: Path | None = None
    # The portal: None means a key generated once and kept in data_dir/secret_key.
    secret_key: str | None = None
    portal_bind: str = "127.0.0.1:8000"
    portal_workers: int = 2
    portal_base_url: str | None = None
    portal_proxy_hops: int = 0
    portal_cookie_secure: bool = True
    portal_password_min: int = 8
    portal_password_max: int = 30
    portal_password_classes: str = "digit,upper,lower,special"
    portal_terms_version: str = "2026-01"
    portal_complaint_answer_days: int = 14
    billing_due_days: int = 14
    billing_series: str = "FV"
    billing_batch_size: int = 5000
    billing_reminder_days: int = 3
    billing_demand_days: int = 14
    billing_settle_on_start: bool = False
    # E-notifications: smtp:// (plain), smtp+starttls:// or smtps:// (implicit TLS), with
    # user:password@ for AUTH; the SMS gateway's base URL and bearer token (SMSAPI-style).
    notify_smtp_url: str = "smtp://127.0.0.1:8025"
    notify_mail_from: str = "MPWiK iBOK <ibok@localhost>"
    notify_tls_cafile: Path | None = None
    notify_sms_url: str = "http://127.0.0.1:8026"
    notify_sms_token: str = "sandbox-token"
    notify_sms_sender: str = "MPWiK"
    notify_email_per_s: int = 50
    notify_sms_per_s: int = 10
    notify_max_attempts: int = 6
    notify_retry_base_s: int = 60
    notify_lanes: int = 4
    # Online payments (Przelewy24 REST v1 or its sandbox) and bank transfers to virtual IBANs.
    p24_base_url: str = "http://127.0.0.1:8024"
    p24_merchant_id: int = 100000
    p24_pos_id: int = 100000
    p24_api_key: str = "sandbox-api-key"
    p24_crc: str = "sandbox-crc-key"
    bank_sort_code: str = "10901014"
    bank_account_prefix: str = "7000"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment, then apply ``overrides``.

        Raises ConfigError if a variable cannot be converted to its field's type.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _convert(field.name, str(field.type), raw)
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def _convert(name: str, type_name: str, raw: str) -> Any:
    variable = PREFIX + name.upper()
    try:
        if type_name.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("Path"):
            return Path(raw)
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not a valid {type_name}") from None
    return raw
