"""MD5 and SHA-1 for the RADIUS hot path: CPython's own MD5 where the interpreter has it, OpenSSL's SHA-1.

RADIUS signs, checks and hides with MD5 over short inputs (mostly under 100 octets): a PAP login
takes eight MD5 computations or copies of a keyed state (the request's Message-Authenticator, the
password, the reply's Message-Authenticator and Response Authenticator). Through ``hashlib`` each
goes to OpenSSL 3's EVP layer, whose context set-up and clean-up cost as much as the hash itself:
0.83 µs against 0.42 µs for CPython's built-in ``_md5`` on 90 octets here, and 1.22 against
0.80 µs to copy a keyed HMAC state and finish it (docs/performance.md, "MD5 without OpenSSL's
EVP layer"). An MS-CHAPv2 login takes six SHA-1s of 40-80 octets, and there OpenSSL's is used: with
the CPU's SHA extensions (every x86 server CPU of the last years has them) it is twice as fast as
the built-in ``_sha1`` in a loop (0.34 against 0.66 µs on an AMD EPYC Zen 4), and in the server
an MS-CHAPv2 login cost 53.0 against 55.5 µs of CPU at the median (``bench.cpu_per_request``,
twelve figures each, taken in turn); on an Intel Xeon it was 1.2 µs cheaper in process ("MS-CHAPv2
in place on this machine"). One slower AMD machine measured the reverse in process, 4-9 µs in
the built-in one's favour ("MS-CHAP in place"); the two later machines decide.
An interpreter built without its own MD5 gets ``hashlib``'s; the digests are the same (the RFC
vectors run against whichever is in use).
"""

from __future__ import annotations

try:
    from _md5 import md5
except ImportError:  # pragma: no cover - CPython builds it unless told not to
    from hashlib import md5
from hashlib import sha1

__all__ = ["md5", "sha1"]
