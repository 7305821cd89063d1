"""MD4 and single DES, the two primitives MS-CHAP needs that ``hashlib`` lacks on OpenSSL 3.

OpenSSL 3 moved both to its "legacy" provider, so ``hashlib.new("md4")`` fails, but its libcrypto
still exports the plain functions (``MD4``, ``DES_set_key_unchecked``, ``DES_ecb_encrypt``;
deprecated, no provider involved). Called through :mod:`ctypes` they cost about 1.5 µs an MD4
and 0.6 µs a DES block here (the GIL kept, the DES calls without ``argtypes``: see below), against
7.2 µs for pycryptodome's MD4 and about 7 µs to build a DES cipher through ``cryptography`` or
pycryptodome: the difference was most of a subscriber's first MS-CHAP login (docs/performance.md,
"MS-CHAP without a warm-up"). Where libcrypto is not found or lacks them (another platform, a FIPS
build without DES), pycryptodome does the same job; :data:`BACKEND` says which is in use.

A key used again and again (the three DES keys of a password's NT hash, one ChallengeResponse per
MS-CHAP login) is prepared once with :func:`des_prepare`: libcrypto's key schedule, kept as a
128-octet ``bytes`` (or a pycryptodome cipher), so that :func:`des_ecb_prepared` only encrypts -
three calls into C instead of six (docs/performance.md, "DES key schedules kept").

Any thread may call them (the C functions write into buffers of the calling thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Sequence
from typing import Any

_SCHEDULE_SIZE = 128  # sizeof(DES_key_schedule): 16 round keys of two 32-bit words
_ENCRYPT = 1


# The fallback imports pycryptodome where it is used: importing it costs 40 ms at every start-up.


def _pycryptodome_md4(data: bytes) -> bytes:
    from Crypto.Hash import MD4

    return MD4.new(data).digest()


def _pycryptodome_des_ecb(keys: Sequence[bytes], block: bytes) -> bytes:
    from Crypto.Cipher import DES

    return b"".join(DES.new(key8, DES.MODE_ECB).encrypt(block) for key8 in keys)


def _pycryptodome_des_prepare(keys: Sequence[bytes]) -> tuple[Any, ...]:
    from Crypto.Cipher import DES

    return tuple(DES.new(key8, DES.MODE_ECB) for key8 in keys)


def _pycryptodome_des_ecb_prepared(ciphers: Sequence[Any], block: bytes) -> bytes:
    return b"".join(cipher.encrypt(block) for cipher in ciphers)


def _libcrypto() -> tuple[Callable[..., Any], ...] | None:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        # PyDLL, not CDLL: the calls keep the GIL. Each takes well under a microsecond, and a call
        # that let the GIL go let the server's other threads (the journal's, the auth log's) take
        # it in the middle of an MS-CHAP login, the reactor then waiting for them to give it back.
        lib = ctypes.PyDLL(name)
        md4_fn, set_key, ecb = lib.MD4, lib.DES_set_key_unchecked, lib.DES_ecb_encrypt
    except (OSError, AttributeError):
        return None
    md4_fn.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)
    md4_fn.restype = ctypes.c_void_p
    # DES_set_key_unchecked(const_DES_cblock *key, DES_key_schedule *ks) and DES_ecb_encrypt(
    # const_DES_cblock *in, DES_cblock *out, DES_key_schedule *ks, int enc) without argtypes: every
    # call passes bytes or ctypes buffers (pointers) and the int 1, which ctypes converts the same way
    # on its own, and converting them through argtypes doubled a call (1.54 against 0.71 µs; three
    # DES_ecb_encrypt calls per MS-CHAPv2 login). MD4's length is a size_t, so MD4 keeps argtypes.
    set_key.restype = None
    ecb.restype = None
    schedule_type, blocks_type, digest_type = ctypes.c_char * _SCHEDULE_SIZE, ctypes.c_char * 24, ctypes.c_char * 16
    byref = ctypes.byref
    # Output buffers per thread, made once: allocating them was half the cost of a call. The
    # fourth item points at each 8-octet block of the second (byref objects, also made once).
    buffers = threading.local()

    def mine() -> tuple[Any, Any, Any, tuple[Any, Any, Any]]:
        try:
            return buffers.all
        except AttributeError:
            blocks = blocks_type()
            buffers.all = (schedule_type(), blocks, digest_type(), (byref(blocks, 0), byref(blocks, 8), byref(blocks, 16)))
            return buffers.all

    def md4(data: bytes) -> bytes:
        out = mine()[2]
        md4_fn(data, len(data), out)
        return out.raw

    def des_ecb(keys: Sequence[bytes], block: bytes) -> bytes:
        schedule, out, _, at = mine()
        for i, key8 in enumerate(keys):
            set_key(key8, schedule)
            ecb(block, at[i], schedule, _ENCRYPT)
        return out.raw[: 8 * len(keys)]

    def des_prepare(keys: Sequence[bytes]) -> tuple[bytes, ...]:
        schedule = mine()[0]
        prepared = []
        for key8 in keys:
            set_key(key8, schedule)
            prepared.append(schedule.raw)  # a copy: C reads it in place later (never writes it)
        return tuple(prepared)

    def des_ecb_prepared(schedules: Sequence[Any], block: bytes) -> bytes:
        _, out, _, at = mine()
        if len(schedules) == 3:  # ChallengeResponse, unrolled
            ecb(block, at[0], schedules[0], _ENCRYPT)
            ecb(block, at[1], schedules[1], _ENCRYPT)
            ecb(block, at[2], schedules[2], _ENCRYPT)
            return out.raw
        for i, schedule in enumerate(schedules):
            ecb(block, at[i], schedule, _ENCRYPT)
        return out.raw[: 8 * len(schedules)]

    # A known answer before trusting it (FIPS III DES test vector; RFC 1320's MD4 of "abc").
    try:
        ok = (des_ecb((bytes.fromhex("0123456789abcdef"),), b"Now is t") == bytes.fromhex("3fa40e8a984d4815")
              and md4(b"abc") == bytes.fromhex("a448017aaf21d8525fc10ae87aa6729d"))  # fmt: skip
        prepared = des_prepare((bytes.fromhex("0123456789abcdef"),) * 3)
        ok = ok and des_ecb_prepared(prepared, b"Now is t") == bytes.fromhex("3fa40e8a984d4815") * 3
    except (OSError, ValueError):
        ok = False
    return (md4, des_ecb, des_prepare, des_ecb_prepared) if ok else None


_found = _libcrypto()
BACKEND = "libcrypto" if _found else "pycryptodome"
md4: Callable[[bytes], bytes]
"""MD4 digest (16 octets) of ``data``."""
des_ecb: Callable[[Sequence[bytes], bytes], bytes]
"""One 8-octet block encrypted with single DES under each 8-octet key of ``keys`` (at most three;
parity bits ignored), the results concatenated: ChallengeResponse is three of them."""
des_prepare: Callable[[Sequence[bytes]], tuple[Any, ...]]
"""The 8-octet keys (at most three) made ready for :func:`des_ecb_prepared` (opaque; immutable)."""
des_ecb_prepared: Callable[[Sequence[Any], bytes], bytes]
"""``des_ecb`` with keys from :func:`des_prepare`: the same octets, without scheduling the keys again."""
md4, des_ecb, des_prepare, des_ecb_prepared = _found or (
    _pycryptodome_md4, _pycryptodome_des_ecb, _pycryptodome_des_prepare, _pycryptodome_des_ecb_prepared
)

