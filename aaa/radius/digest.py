"""MD5 and SHA-1 for the RADIUS hot path: CPython's own implementations where the interpreter has them.

RADIUS signs, checks and hides with MD5 over short inputs (mostly under 100 octets): a PAP login
takes eight MD5 computations or copies of a keyed state (the request's Message-Authenticator, the
password, the reply's Message-Authenticator and Response Authenticator). Through ``hashlib`` each
goes to OpenSSL 3's EVP layer, whose context set-up and clean-up cost as much as the hash itself:
0.83 µs against 0.42 µs for CPython's built-in ``_md5`` on 90 octets here, and 1.22 against
0.80 µs to copy a keyed HMAC state and finish it (docs/performance.md, "MD5 without OpenSSL's
EVP layer"). An MS-CHAPv2 login takes six SHA-1s of 40-80 octets: in a loop on its own OpenSSL's is
about as fast as the built-in ``_sha1`` (0.82 against 1.02 µs on one machine, 1.02 against 0.98 on
another), but inside the server, where the EVP layer's code competes for the caches with everything
else a request runs, the built-in one saved 4-9 µs a login on an AMD EPYC (docs/performance.md, "MS-CHAP
in place"). On an Intel Xeon with the SHA extensions OpenSSL's was the cheaper by 1.2 µs a login in
place ("MS-CHAPv2 in place on this machine"): which one wins depends on the CPU, by a few percent
of a login either way; the built-in one stays.
An interpreter built without its own MD5 or SHA-1 gets ``hashlib``'s; the digests are the same (the
RFC vectors run against whichever is in use).
"""

from __future__ import annotations

try:
    from _md5 import md5
except ImportError:  # pragma: no cover - CPython builds it unless told not to
    from hashlib import md5
try:
    from _sha1 import sha1
except ImportError:  # pragma: no cover - as above
    from hashlib import sha1

__all__ = ["md5", "sha1"]
