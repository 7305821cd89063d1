"""MD5 for the RADIUS hot path: CPython's own implementation where the interpreter has one.

RADIUS signs, checks and hides with MD5 over short inputs (mostly under 100 octets): a PAP login
takes eight MD5 computations or copies of a keyed state (the request's Message-Authenticator, the
password, the reply's Message-Authenticator and Response Authenticator). Through ``hashlib`` each
goes to OpenSSL 3's EVP layer, whose context set-up and clean-up cost as much as the hash itself:
0.83 µs against 0.42 µs for CPython's built-in ``_md5`` on 90 octets here, and 1.22 against
0.80 µs to copy a keyed HMAC state and finish it (docs/performance.md, "MD5 without OpenSSL's
EVP layer"). SHA-1 goes the other way (OpenSSL 0.82 µs, built-in 1.02 µs), so MS-CHAP keeps
``hashlib.sha1``. An interpreter built without its own MD5 gets ``hashlib``'s; both give the same
digests (the RFC vectors run against whichever is in use).
"""

from __future__ import annotations

try:
    from _md5 import md5
except ImportError:  # pragma: no cover - CPython builds it unless told not to
    from hashlib import md5

__all__ = ["md5"]
