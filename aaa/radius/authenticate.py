"""The built-in authenticator: PAP, CHAP, MS-CHAPv1, MS-CHAPv2 and Hotspot MAC authentication.

A plugin like any other (registered first by :mod:`aaa.plugins`). ``aaa_authorize`` makes the
checks every login needs whatever the policy: the login exists, the MAC matches its binding, and it
is not over its simultaneous-use limit. ``aaa_authenticate`` picks the method from the attributes
RouterOS sent and verifies it against the cached password (or NT hash), adding MS-CHAP2-Success
and the MPPE keys to the reply when MS-CHAP succeeds.
"""

from __future__ import annotations

import hmac

from aaa import hookimpl
from aaa.errors import ValidationError
from aaa.radius import crypto, mschap
from aaa.stages import Request, Result
from aaa.validate import mac as normalize_mac

MPPE_ENCRYPTION_ALLOWED = 1  # MS-MPPE-Encryption-Policy: encryption allowed
MPPE_TYPES_40_128 = 6  # MS-MPPE-Encryption-Types: RC4 40 and 128 bit
_MPPE_POLICY = (("MS-MPPE-Encryption-Policy", MPPE_ENCRYPTION_ALLOWED), ("MS-MPPE-Encryption-Types", MPPE_TYPES_40_128))


def calling_mac(request: Request) -> str | None:
    value = request.packet.get("Calling-Station-Id")
    if not value:
        return None
    try:
        return normalize_mac(value)
    except ValidationError:
        return None


@hookimpl
def aaa_authorize(request: Request) -> Result | None:
    sub = request.subscriber
    if sub is None:
        return request.reject("unknown user")
    if sub.mac_binding:
        mac = calling_mac(request)
        if mac != sub.mac_binding:
            return request.reject("MAC address not allowed for this login")
    online = request.control.get("online_sessions", 0)
    if online >= sub.simultaneous_use:
        return request.reject(f"already online ({online} of {sub.simultaneous_use} sessions)")
    return Result.OK


@hookimpl
def aaa_authenticate(request: Request) -> Result | None:
    packet = request.packet
    sub = request.subscriber
    if sub is None:
        return request.reject("unknown user")
    if "CHAP-Password" in packet:
        return _chap(request)
    challenge = packet.raw("MS-CHAP-Challenge")
    if challenge is not None:
        response = packet.raw("MS-CHAP2-Response")
        if response is not None:
            return _mschap2(request, challenge, response)
        if "MS-CHAP-Response" in packet:
            return _mschap1(request)
    if "User-Password" in packet:
        return _pap(request)
    return request.reject("no credentials in the request")


def _mac_login(request: Request) -> bool:
    """Hotspot MAC authentication: a password-less login bound to the MAC the router reports."""
    sub = request.subscriber
    return sub.password is None and sub.mac_binding is not None and calling_mac(request) == sub.mac_binding


def _without_password(request: Request, method: str) -> Result | None:
    """What PAP and CHAP share: a MAC login needs no password; a login without one is refused."""
    request.method = method
    if _mac_login(request):
        request.method = "mac"
        return Result.OK
    if request.subscriber.password is None:
        return request.reject("no password set for this login")
    return None


def _pap(request: Request) -> Result:
    early = _without_password(request, "pap")
    if early is not None:
        return early
    sub = request.subscriber
    hidden = request.packet.raw("User-Password")
    try:
        given = crypto.pap_unhide(hidden, request.nas.secret, request.packet.authenticator)
    except crypto.RadiusCryptoError:
        return request.reject("malformed User-Password")
    if hmac.compare_digest(given, sub.password.encode("utf-8")):
        return Result.OK
    return request.reject("wrong password")


def _chap(request: Request) -> Result:
    early = _without_password(request, "chap")
    if early is not None:
        return early
    sub = request.subscriber
    packet = request.packet
    challenge = packet.raw("CHAP-Challenge") or packet.authenticator
    try:
        ok = crypto.chap_verify(packet.raw("CHAP-Password"), challenge, sub.password.encode("utf-8"))
    except crypto.RadiusCryptoError:
        return request.reject("malformed CHAP-Password")
    return Result.OK if ok else request.reject("wrong password")


def _nt_hash(request: Request) -> bytes | None:
    keys = _nt_keys(request)
    return keys.nt_hash if keys is not None else None


def _nt_keys(request: Request) -> mschap.NtKeys | None:
    """The subscriber's MS-CHAP key material, derived on its first MS-CHAP login and kept on the
    cache entry (a changed password arrives as a new entry with the cache refresh)."""
    sub = request.subscriber
    if sub.nt_keys is None and sub.password is not None:
        sub.nt_keys = mschap.nt_keys(sub.password)
    return sub.nt_keys


def _mschap2(request: Request, challenge: bytes, response: bytes) -> Result:
    request.method = "mschapv2"
    packet = request.packet
    keys = _nt_keys(request)
    # The User-Name octets as the peer sent them (RFC 2759 section 8.2 hashes those, not a re-encoding).
    username = packet.raw("User-Name") or b""
    try:
        accept = mschap.mschap2_authenticate(response, challenge, username, keys) if keys else None
    except crypto.RadiusCryptoError:
        return request.reject("malformed MS-CHAPv2 attributes")
    if accept is None:
        ident = response[0] if response else 0
        request.add_reply("MS-CHAP-Error", mschap.mschap2_error(ident, mschap.MsChapError.AUTHENTICATION_FAILURE))
        return request.reject("wrong password")
    send, recv = mschap.mppe_key_attributes(accept.send_key, accept.recv_key, request.nas.secret, packet.authenticator)
    request.reply += (("MS-CHAP2-Success", accept.success), ("MS-MPPE-Send-Key", send), ("MS-MPPE-Recv-Key", recv), *_MPPE_POLICY)
    return Result.OK


def _mschap1(request: Request) -> Result:
    request.method = "mschapv1"
    packet = request.packet
    response = packet.raw("MS-CHAP-Response")
    nt_hash = _nt_hash(request)
    try:
        accept = mschap.mschap1_authenticate(response, packet.raw("MS-CHAP-Challenge"), nt_hash) if nt_hash else None
    except crypto.RadiusCryptoError:
        return request.reject("malformed MS-CHAP attributes")
    if accept is None:
        ident = response[0] if response else 0
        request.add_reply("MS-CHAP-Error", mschap.mschap1_error(ident, mschap.MsChapError.AUTHENTICATION_FAILURE))
        return request.reject("wrong password")
    keys = mschap.encrypt_ms_chap_mppe_keys(accept.mppe_keys, request.nas.secret, packet.authenticator)
    request.add_reply("MS-CHAP-MPPE-Keys", keys)
    request.reply += _MPPE_POLICY
    return Result.OK
