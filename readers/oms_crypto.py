"""OMS / EN 13757-4 cryptography: security modes 5 and 7 (AES-128-CBC), ELL AES-128-CTR, CMAC.

AES key objects are cached per key, so decoding many telegrams of one meter costs one key
schedule. Every function is pure: bytes in, bytes out.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from meterflow.errors import DecryptError

BLOCK = 16
ZERO_IV = bytes(BLOCK)
KDF_PADDING = b"\x07" * 7
DC_ENC_FROM_METER = 0x00
DC_MAC_FROM_METER = 0x01


@functools.lru_cache(maxsize=4096)
def _aes(key: bytes) -> algorithms.AES:
    if len(key) != BLOCK:
        raise DecryptError(f"AES-128 key must be 16 bytes, got {len(key)}")
    return algorithms.AES(key)


def mode5_iv(manufacturer: bytes, address: bytes, access_no: int) -> bytes:
    """Return the mode 5 IV: M (2 bytes), A (id, version, type: 6 bytes), 8 x access number."""
    return manufacturer + address + bytes([access_no]) * 8


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Return ``data`` (a multiple of 16 bytes) decrypted with AES-128-CBC."""
    decryptor = Cipher(_aes(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


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
