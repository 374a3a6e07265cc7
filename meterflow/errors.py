"""The one error tree of meterflow.

Errors raised by paho-mqtt, psycopg and pyserial are mapped into these classes at the
boundary where they occur, so callers catch ``MeterflowError`` subclasses only.
"""


class MeterflowError(Exception):
    """Base class of every error meterflow raises on purpose."""


class ConfigError(MeterflowError):
    """A setting is missing or malformed."""


class DecodeError(MeterflowError):
    """A frame, telegram or envelope cannot be decoded."""


class FrameError(DecodeError):
    """A frame's structure (start, length, stop byte, field) is invalid."""


class ChecksumError(DecodeError):
    """A wired M-Bus frame's checksum does not match."""


class CrcError(DecodeError):
    """A wireless M-Bus block CRC does not match."""


class UnsupportedError(DecodeError):
    """The frame uses a CI field, security mode or coding this codec does not handle."""


class DecryptError(DecodeError):
    """A telegram cannot be decrypted: key missing or wrong."""


class EnvelopeError(DecodeError):
    """An MQTT envelope is not valid JSON or breaks the envelope schema."""


class TransportError(MeterflowError):
    """A broker, serial line or socket failed."""


class StoreError(MeterflowError):
    """The database refused or lost a request."""


class MigrationError(StoreError):
    """A schema migration failed or the schema is in an unknown state."""


class BillingError(MeterflowError):
    """A billing rule cannot be applied to the data given."""


class AuthError(MeterflowError):
    """Authentication or authorisation failed."""
