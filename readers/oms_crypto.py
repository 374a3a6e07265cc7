"""OMS / EN 13757-4 cryptography: security modes 5 and 7 (AES-128-CBC), ELL AES-128-CTR, CMAC.

A mode 5 decryption reuses one CBC context per meter key, kept in a per-thread LRU of
``decryption_cache_keys()`` keys: a hit costs about 1 us, a new context about 15 us (key
schedule and OpenSSL set-up) and 1.7 KiB. Every function is pure: bytes in, bytes out.
"""

from __future__ import annotations

import collections
import functools
import threading

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from meterflow.errors import ConfigError, DecryptError

BLOCK = 16
ZERO_IV = bytes(BLOCK)
KDF_PADDING = b"\x07" * 7
DC_ENC_FROM_METER = 0x00
DC_MAC_FROM_METER = 0x01
DEFAULT_CACHE_KEYS = 262_144  # a city of 200,000 meters, every key cached


@functools.lru_cache(maxsize=4096)
def _aes(key: bytes) -> algorithms.AES:
    if len(key) != BLOCK:
        raise DecryptError(f"AES-128 key must be 16 bytes, got {len(key)}")
    return algorithms.AES(key)


def mode5_iv(manufacturer: bytes, address: bytes, access_no: int) -> bytes:
    """Return the mode 5 IV: M (2 bytes), A (id, version, type: 6 bytes), 8 x access number."""
    return manufacturer + address + bytes([access_no]) * 8


class _Decryptors(threading.local):
    """Per-thread AES-128-CBC decryption contexts by key, least recently used first (a
    context is not thread-safe)."""

    limit = DEFAULT_CACHE_KEYS

    def __init__(self) -> None:
        self.by_key: collections.OrderedDict[bytes, CipherContext] = collections.OrderedDict()


_DECRYPTORS = _Decryptors()


def set_decryption_cache_keys(keys: int) -> None:
    """Keep at most ``keys`` CBC contexts per decoding thread (about 1.7 KiB each).

    Raises ConfigError if ``keys`` is below 1.
    """
    if keys < 1:
        raise ConfigError(f"the decryption cache must hold at least one key, not {keys}")
    _Decryptors.limit = keys
    contexts = _DECRYPTORS.by_key
    while len(contexts) > keys:
        contexts.popitem(last=False)


def decryption_cache_keys() -> int:
    """Return how many CBC contexts each decoding thread keeps."""
    return _Decryptors.limit


def _cbc_decryptor(key: bytes) -> CipherContext:
    """Return this thread's reusable CBC decryption context for ``key``."""
    contexts = _DECRYPTORS.by_key
    context = contexts.get(key)
    if context is not None:
        contexts.move_to_end(key)
        return context
    while len(contexts) >= _Decryptors.limit:
        contexts.popitem(last=False)
    if len(key) != BLOCK:
        raise DecryptError(f"AES-128 key must be 16 bytes, got {len(key)}")
    # Not through _aes(): its bounded cache would only churn with one key per meter.
    context = contexts[key] = Cipher(algorithms.AES(key), modes.CBC(ZERO_IV)).decryptor()
    return context


def cbc_decrypt(key: bytes, iv: bytes, data: bytes, *, reuse: bool = True) -> bytes:
    """Return ``data`` (a multiple of 16 bytes) decrypted with AES-128-CBC.

    A meter's key costs one cached CBC context rather than a new cipher per telegram: a
    CBC decryptor chains each block to the previous ciphertext block, so decrypting the IV
    as one extra leading block makes it the chaining value for ``data`` (that first output
    block is dropped). ``reuse=False`` keeps one-off keys (mode 7 session keys) out of the
    cache. Raises ValueError if ``data`` is not a whole number of blocks.
    """
    if len(data) % BLOCK or len(iv) != BLOCK:
        raise ValueError(f"AES-CBC takes a {BLOCK}-byte IV and whole {BLOCK}-byte blocks")
    if not reuse:
        decryptor = Cipher(_aes(key), modes.CBC(iv)).decryptor()
        return decryptor.update(data) + decryptor.finalize()
    return _cbc_decryptor(key).update(iv + data)[BLOCK:]


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Return ``data`` (a multiple of 16 bytes) encrypted with AES-128-CBC."""
    encryptor = Cipher(_aes(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def ell_iv(manufacturer: bytes, address: bytes, cc: int, session: bytes) -> bytes:
    """Return the ELL AES-CTR initial counter: M, A, CC, SN, FN (0, 0) and BC (0)."""
    return manufacturer + address + bytes([cc]) + session + b"\x00\x00\x00"


def ctr_crypt(key: bytes, counter: bytes, data: bytes) -> bytes:
    """Return ``data`` XORed with the AES-128-CTR key stream (CTR encrypts and decrypts)."""
    encryptor = Cipher(_aes(key), modes.CTR(counter)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def cmac(key: bytes, data: bytes) -> bytes:
    """Return the 16-byte AES-CMAC of ``data``."""
    mac = CMAC(_aes(key))
    mac.update(data)
    return mac.finalize()


def derive_key(master: bytes, constant: int, counter: bytes, meter_id: bytes) -> bytes:
    """Return the OMS KDF-A ephemeral key: CMAC(master, DC || counter || id || 07 x 7).

    ``counter`` is the 4-byte AFL message counter and ``meter_id`` the 4 id bytes, both as
    transmitted (least significant byte first).
    """
    return cmac(master, bytes([constant]) + counter + meter_id + KDF_PADDING)
