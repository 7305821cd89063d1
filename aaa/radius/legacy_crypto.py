"""MD4 and single DES, the two primitives MS-CHAP needs that ``hashlib`` lacks on OpenSSL 3.

OpenSSL 3 moved both to its "legacy" provider, so ``hashlib.new("md4")`` fails, but its libcrypto
still exports the plain functions (``MD4``, ``DES_set_key_unchecked``, ``DES_ecb_encrypt``;
deprecated, no provider involved). Called through :mod:`ctypes` they cost about 1.5 µs an MD4
and 1.6 µs a DES block here, against 7.2 µs for pycryptodome's MD4 and about 7 µs to build a
DES cipher through ``cryptography`` or pycryptodome: the difference was most of a subscriber's
first MS-CHAP login (docs/performance.md, "MS-CHAP without a warm-up"). Where libcrypto is not
found or lacks them (another platform, a FIPS build without DES), pycryptodome does the same job;
:data:`BACKEND` says which is in use.

Any thread may call them (the C functions write into buffers of the calling thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Sequence
from typing import Any

from Crypto.Cipher import DES
from Crypto.Hash import MD4

_SCHEDULE_SIZE = 128  # sizeof(DES_key_schedule): 16 round keys of two 32-bit words
_ENCRYPT = 1


def _pycryptodome_md4(data: bytes) -> bytes:
    return MD4.new(data).digest()


def _pycryptodome_des_ecb(keys: Sequence[bytes], block: bytes) -> bytes:
    return b"".join(DES.new(key8, DES.MODE_ECB).encrypt(block) for key8 in keys)


def _libcrypto() -> tuple[Callable[[bytes], bytes], Callable[[Sequence[bytes], bytes], bytes]] | None:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        md4_fn, set_key, ecb = lib.MD4, lib.DES_set_key_unchecked, lib.DES_ecb_encrypt
    except (OSError, AttributeError):
        return None
    md4_fn.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)
    md4_fn.restype = ctypes.c_void_p
    set_key.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
    set_key.restype = None
    ecb.argtypes = (ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
    ecb.restype = None
    schedule_type, blocks_type, digest_type = ctypes.c_char * _SCHEDULE_SIZE, ctypes.c_char * 24, ctypes.c_char * 16
    byref = ctypes.byref
    # Output buffers per thread, made once: allocating them was half the cost of a call.
    buffers = threading.local()

    def mine() -> tuple[Any, Any, Any]:
        try:
            return buffers.all
        except AttributeError:
            buffers.all = (schedule_type(), blocks_type(), digest_type())
            return buffers.all

    def md4(data: bytes) -> bytes:
        out = mine()[2]
        md4_fn(data, len(data), out)
        return out.raw

    def des_ecb(keys: Sequence[bytes], block: bytes) -> bytes:
        schedule, out, _ = mine()
        for i, key8 in enumerate(keys):
            set_key(key8, schedule)
            ecb(block, byref(out, 8 * i), schedule, _ENCRYPT)
        return out.raw[: 8 * len(keys)]

    # A known answer before trusting it (FIPS III DES test vector; RFC 1320's MD4 of "abc").
    try:
        ok = (des_ecb((bytes.fromhex("0123456789abcdef"),), b"Now is t") == bytes.fromhex("3fa40e8a984d4815")
              and md4(b"abc") == bytes.fromhex("a448017aaf21d8525fc10ae87aa6729d"))  # fmt: skip
    except (OSError, ValueError):
        ok = False
    return (md4, des_ecb) if ok else None


_found = _libcrypto()
BACKEND = "libcrypto" if _found else "pycryptodome"
md4: Callable[[bytes], bytes]
"""MD4 digest (16 octets) of ``data``."""
des_ecb: Callable[[Sequence[bytes], bytes], bytes]
"""One 8-octet block encrypted with single DES under each 8-octet key of ``keys`` (at most three;
parity bits ignored), the results concatenated: ChallengeResponse is three of them."""
md4, des_ecb = _found or (_pycryptodome_md4, _pycryptodome_des_ecb)

