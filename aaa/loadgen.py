"""A RADIUS load generator (``aaa bench``): closed-loop, precomputed packets, loopback targets only.

Usable against any RADIUS server, ours or another. Every packet is built and signed before the
clock starts (:func:`build_pool`), so the measured loop only sends, receives, checks the Response
Authenticator and records the latency. ``window`` requests are outstanding at any time (split over
the sender processes); a request unanswered after ``timeout`` seconds is a timeout and its slot
moves on (no retransmission).

Each sender process owns ``ceil(window / 128)`` UDP sockets; the packet ``j`` of a process goes out
on socket ``j % S`` with Identifier ``(j // S) % 256``, and an Identifier is never reused while its
previous request is outstanding. When a duration-bounded run exhausts its pool of precomputed
packets it replays the pool from a fresh set of sockets (new source ports), so a server's RFC 5080
duplicate cache, keyed by source address and port, never answers a replay from its cache.

Request kinds: Access-Request with PAP, CHAP or MS-CHAPv2 (``auth``); Accounting-Request Start,
Interim-Update, Stop, a Start/Interim/Stop ``cycle``, Accounting-On (``acct``); and ``login``: per
subscriber an Access-Request, then (a block later) its Accounting-Start, as routers send them after
a reboot.
"""

from __future__ import annotations

import ipaddress
import math
import multiprocessing
import os
import random
import select
import socket
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aaa.errors import ValidationError
from aaa.radius import crypto, digest, mschap
from aaa.radius.codec import Code, encode_request

AUTH_METHODS = ("pap", "chap", "mschapv2")
ACCT_KINDS = ("start", "interim", "stop", "cycle", "on")
SLOTS_PER_SOCKET = 128
_STATUS = {"start": "Start", "interim": "Interim-Update", "stop": "Stop", "on": "Accounting-On"}


def loopback_address(host: str) -> str:
    """The loopback address ``host`` names; anything outside 127.0.0.0/8 and ::1 is refused."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except socket.gaierror as exc:
        raise ValidationError(f"cannot resolve {host!r}: {exc.strerror}") from None
    addresses = {str(info[4][0]) for info in infos}  # typeshed allows an int here (AF_PACKET); UDP gives str
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValidationError(f"{host} is not a loopback address: aaa bench only targets 127.0.0.0/8 and ::1")
    return sorted(addresses)[0]


def users_from_pattern(user_pattern: str, password_pattern: str, first: int, last: int) -> list[tuple[str, str]]:
    """``('user00001', 'pw00001')``... from printf-style patterns."""
    if last < first:
        raise ValidationError("--last is below --first")
    return [(user_pattern % i, password_pattern % i) for i in range(first, last + 1)]


def users_from_file(path: str | Path) -> list[tuple[str, str]]:
    """Lines ``login password`` (blank lines and ``#`` comments skipped)."""
    users = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            users.append((parts[0], parts[1]))
    if not users:
        raise ValidationError(f"no 'login password' lines in {path}")
    return users


@dataclass
class Plan:
    """What to send: the request kind, to whom, how many and for how long."""

    users: list[tuple[str, str]]
    kind: str = "auth"  # auth | acct | login
    method: str = "pap"  # for auth and login
    acct: str = "cycle"  # for acct
    host: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    secret: str = "testing123"
    window: int = 32
    processes: int = 1
    count: int | None = None
    duration: float | None = None
    timeout: float = 2.0
    pool: int = 20000
    message_authenticator: bool = True
    verify: bool = True
    session_prefix: str = field(default_factory=lambda: os.urandom(3).hex())
    nas_ip: str = "127.0.0.1"

    def check(self) -> None:
        if self.count is None and self.duration is None:
            raise ValidationError("give --count or --duration: a run is always bounded")
        if self.kind not in ("auth", "acct", "login"):
            raise ValidationError(f"unknown request kind {self.kind!r}")
        if self.method not in AUTH_METHODS:
            raise ValidationError(f"unknown method {self.method!r} (one of {', '.join(AUTH_METHODS)})")
        if self.acct not in ACCT_KINDS:
            raise ValidationError(f"unknown accounting kind {self.acct!r} (one of {', '.join(ACCT_KINDS)})")
        if self.window < 1 or self.processes < 1 or self.processes > self.window:
            raise ValidationError("need 1 <= --processes <= --window")
        if not self.users:
            raise ValidationError("no users")
        self.host = loopback_address(self.host)


# -- packets ---------------------------------------------------------------------------------------


def _access_request(plan: Plan, ident: int, login: str, password: str, port: int) -> bytes:
    secret = plan.secret.encode()
    authenticator = os.urandom(16)
    attributes: list[tuple[str, Any]] = [("User-Name", login)]
    if plan.method == "pap":
        attributes.append(("User-Password", crypto.pap_hide(password.encode(), secret, authenticator)))
    elif plan.method == "chap":
        challenge, chap_id = os.urandom(16), ident
        attributes.append(("CHAP-Password", bytes((chap_id,)) + crypto.chap_response(chap_id, password.encode(), challenge)))
        attributes.append(("CHAP-Challenge", challenge))
    else:
        challenge, peer = os.urandom(16), os.urandom(16)
        nt_response = mschap.generate_nt_response(challenge, peer, login.encode(), _nt_hash(password))
        attributes.append(("MS-CHAP-Challenge", challenge))
        attributes.append(("MS-CHAP2-Response", bytes((ident, 0)) + peer + bytes(8) + nt_response))
    attributes += [("NAS-IP-Address", plan.nas_ip), ("NAS-Port", port), ("NAS-Port-Type", "Ethernet"),
                   ("Service-Type", "Framed-User"), ("Framed-Protocol", "PPP")]  # fmt: skip
    return encode_request(Code.ACCESS_REQUEST, ident, attributes, secret, authenticator=authenticator,
                          message_authenticator=plan.message_authenticator)  # fmt: skip


_NT_HASHES: dict[str, bytes] = {}


def _nt_hash(password: str) -> bytes:
    cached = _NT_HASHES.get(password)
    if cached is None:
        cached = _NT_HASHES[password] = mschap.nt_password_hash(password)
    return cached


def _accounting_request(plan: Plan, ident: int, status: str, login: str, user: int, rnd: int, seq: int) -> bytes:
    attributes: list[tuple[str, Any]] = [("Acct-Status-Type", _STATUS[status]), ("NAS-IP-Address", plan.nas_ip)]
    if status != "on":
        attributes += [
            ("User-Name", login), ("Acct-Session-Id", f"{plan.session_prefix}-{rnd:x}-{user:x}"),
            ("NAS-Port", user), ("NAS-Port-Type", "Ethernet"), ("Service-Type", "Framed-User"),
            ("Framed-Protocol", "PPP"), ("Framed-IP-Address", str(ipaddress.IPv4Address(0x0A000000 + user))),
            ("Calling-Station-Id", "02:00:" + ":".join(f"{b:02X}" for b in (user + 1).to_bytes(4, "big"))),
        ]  # fmt: skip
        if status != "start":
            attributes += [("Acct-Session-Time", 60 * (seq + 1)), ("Acct-Input-Octets", 1_000_000 * (seq + 1)),
                           ("Acct-Output-Octets", 9_000_000 * (seq + 1)), ("Acct-Input-Packets", 1000 * (seq + 1)),
                           ("Acct-Output-Packets", 8000 * (seq + 1))]  # fmt: skip
        if status == "stop":
            attributes.append(("Acct-Terminate-Cause", "User-Request"))
    return encode_request(Code.ACCOUNTING_REQUEST, ident, attributes, plan.secret, message_authenticator=False)


def _specs(plan: Plan, process: int, size: int) -> list[tuple[str, int, int, int]]:
    """The first ``size`` requests of one sender process: ``(what, user, round, seq)``."""
    n, step = len(plan.users), plan.processes
    specs: list[tuple[str, int, int, int]] = []
    if plan.kind == "auth":
        specs = [("auth", g % n, 0, 0) for g in range(process, process + size * step, step)]
    elif plan.kind == "acct" and plan.acct == "on":
        specs = [("on", 0, 0, 0)] * size
    elif plan.kind == "acct" and plan.acct == "interim":
        specs = [("interim", g % n, 0, g // n) for g in range(process, process + size * step, step)]
    elif plan.kind == "acct" and plan.acct in ("start", "stop"):
        specs = [(plan.acct, g % n, g // n, 0) for g in range(process, process + size * step, step)]
    else:  # a cycle of Start, Interim, Stop, or a login (Access-Request, then Accounting-Start)
        phases = ("start", "interim", "stop") if plan.kind == "acct" else ("auth", "start")
        block = max(256, 4 * plan.window)
        sessions = range(process, process + math.ceil(size / len(phases)) * step, step)
        for b in range(0, len(sessions), block):
            for phase in phases:
                specs += [(phase, s % n, s // n, 0) for s in sessions[b : b + block]]
        specs = specs[:size]
    return specs


def build_pool(plan: Plan, process: int, size: int, sockets: int) -> list[tuple[bytes, int]]:
    """Precomputed ``(packet, 0 for the auth port | 1 for accounting)`` with their Identifiers baked in."""
    order = list(range(len(plan.users)))
    random.Random(7).shuffle(order)
    pool = []
    for j, (what, user, rnd, seq) in enumerate(_specs(plan, process, size)):
        ident = (j // sockets) & 0xFF
        index = order[user]
        login, password = plan.users[index]
        if what == "auth":
            pool.append((_access_request(plan, ident, login, password, index + 1), 0))
        else:
            pool.append((_accounting_request(plan, ident, what, login, index + 1, rnd, seq), 1))
    return pool


# -- the measured loop -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one sender process saw."""

    sent: int = 0
    accept: int = 0
    reject: int = 0
    accounting_response: int = 0
    other: int = 0
    timeout: int = 0
    bad_reply: int = 0
    started: float = 0.0
    ended: float = 0.0
    precompute_s: float = 0.0
    pool_size: int = 0
    pool_replays: int = 0
    latencies: bytes = b""


class _Socket:
    __slots__ = ("sock", "pending", "outstanding")

    def __init__(self, family: int) -> None:
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        self.pending: list[tuple[float, bytes] | None] = [None] * 256
        self.outstanding = 0


def _pool_size(plan: Plan, per_process: int | None, sockets: int) -> tuple[int, bool]:
    """How many packets to precompute, and whether the run may replay them."""
    if per_process is not None and per_process <= plan.pool:
        return per_process, False
    unit = sockets * 256
    return max(unit, math.ceil(plan.pool / unit) * unit), True


def sender(plan: Plan, process: int, per_process: int | None, window: int, ready: Any, go: Any, progress: Any) -> Outcome:
    """Precompute, wait for ``go``, then run one closed loop; returns the counts and latencies."""
    began = time.perf_counter()
    nsock = math.ceil(window / SLOTS_PER_SOCKET)
    size, may_replay = _pool_size(plan, per_process, nsock)
    pool = build_pool(plan, process, size, nsock)
    family = socket.AF_INET6 if ":" in plan.host else socket.AF_INET
    addrs = [(plan.host, plan.auth_port), (plan.host, plan.acct_port)]
    secret = plan.secret.encode()
    out = Outcome(precompute_s=time.perf_counter() - began, pool_size=size)
    latencies = array("d")
    md5 = digest.md5
    verify = plan.verify
    poller = select.epoll()
    by_fd: dict[int, _Socket] = {}

    def open_set() -> list[_Socket]:
        fresh = [_Socket(family) for _ in range(nsock)]
        for s in fresh:
            by_fd[s.sock.fileno()] = s
            poller.register(s.sock.fileno(), select.EPOLLIN)
        return fresh

    def close(s: _Socket) -> None:
        fd = s.sock.fileno()
        poller.unregister(fd)
        del by_fd[fd]
        s.sock.close()

    current = open_set()
    retired: list[_Socket] = []
    limit = per_process if per_process is not None else 1 << 62
    parent = os.getppid()
    ready.set()
    while not go.wait(0.5):
        if os.getppid() != parent:  # the parent died before the start: do not linger
            os._exit(1)
    now = time.perf_counter
    start = now()
    deadline = start + plan.duration if plan.duration is not None else float("inf")
    next_sweep = start + 0.05
    k = outstanding = done = reported = 0
    sending = True
    while True:
        if sending:
            while outstanding < window and k < limit:
                j = k % size
                if j == 0 and k:
                    if not may_replay:
                        break
                    retired += current
                    current = open_set()
                    out.pool_replays += 1
                s = current[j % nsock]
                ident = (j // nsock) & 0xFF
                if s.pending[ident] is not None:
                    break
                packet, dest = pool[j]
                s.sock.sendto(packet, addrs[dest])
                s.pending[ident] = (now(), packet)
                s.outstanding += 1
                outstanding += 1
                k += 1
            if k >= limit:
                sending = False
        if not sending and outstanding == 0:
            break
        for fd, _ in poller.poll(0.01):
            s = by_fd[fd]
            recv = s.sock.recv
            pending = s.pending
            while True:
                try:
                    data = recv(4096)
                except BlockingIOError:
                    break
                if len(data) < 20:
                    out.bad_reply += 1
                    continue
                entry = pending[data[1]]
                if entry is None:
                    out.bad_reply += 1
                    continue
                sent_at, request = entry
                if verify and md5(data[:4] + request[4:20] + data[20:] + secret).digest() != data[4:20]:
                    out.bad_reply += 1
                    continue
                latencies.append(now() - sent_at)
                code = data[0]
                if code == 2:
                    out.accept += 1
                elif code == 3:
                    out.reject += 1
                elif code == 5:
                    out.accounting_response += 1
                else:
                    out.other += 1
                pending[data[1]] = None
                s.outstanding -= 1
                outstanding -= 1
                done += 1
        t = now()
        if sending and t >= deadline:
            sending = False
        if t >= next_sweep:
            next_sweep = t + 0.05
            if os.getppid() != parent:
                os._exit(1)
            expired = t - plan.timeout
            for s in list(by_fd.values()):
                if s.outstanding:
                    for i, entry in enumerate(s.pending):
                        if entry is not None and entry[0] < expired:
                            s.pending[i] = None
                            s.outstanding -= 1
                            outstanding -= 1
                            out.timeout += 1
                            done += 1
            for s in [r for r in retired if not r.outstanding]:
                retired.remove(s)
                close(s)
            if progress is not None and done != reported:
                with progress.get_lock():
                    progress.value += done - reported
                reported = done
    out.started, out.ended = start, now()
    if progress is not None and done != reported:
        with progress.get_lock():
            progress.value += done - reported
    for s in list(by_fd.values()):
        close(s)
    poller.close()
    out.sent = k
    out.latencies = latencies.tobytes()
    return out


def _child(plan: Plan, process: int, per_process: int | None, window: int, ready: Any, go: Any, progress: Any, conn: Any) -> None:
    try:
        conn.send(sender(plan, process, per_process, window, ready, go, progress))
    except BaseException as exc:  # reported by the parent as one line
        ready.set()
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(plan: Plan, on_progress: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Run the plan with ``plan.processes`` sender processes; the summary as a JSON-able dict.

    ``on_progress(completed, elapsed_seconds)`` is called about ten times a second while it runs.
    """
    plan.check()
    mp = multiprocessing.get_context("fork")
    progress = mp.Value("q", 0)
    go = mp.Event()
    children = []
    windows = [plan.window // plan.processes + (1 if p < plan.window % plan.processes else 0) for p in range(plan.processes)]
    for p in range(plan.processes):
        per = None if plan.count is None else plan.count // plan.processes + (1 if p < plan.count % plan.processes else 0)
        ready = mp.Event()
        parent_end, child_end = mp.Pipe(duplex=False)
        proc = mp.Process(target=_child, args=(plan, p, per, windows[p], ready, go, progress, child_end), daemon=True)
        proc.start()
        child_end.close()
        children.append((proc, ready, parent_end))
    try:
        precompute_began = time.perf_counter()
        for proc, ready, _ in children:
            while not ready.wait(0.5):
                if not proc.is_alive():
                    break
        precompute_s = time.perf_counter() - precompute_began
        go.set()
        started_wall = time.time()
        began = time.perf_counter()
        outcomes: list[Outcome] = []
        for proc, _, conn in children:
            while not conn.poll(0.1):
                if on_progress is not None:
                    on_progress(progress.value, time.perf_counter() - began)
                if not proc.is_alive() and not conn.poll(0):
                    raise ValidationError(f"sender process {proc.pid} died (exit code {proc.exitcode})")
            result = conn.recv()
            if isinstance(result, str):
                raise ValidationError(f"sender process failed: {result}")
            outcomes.append(result)
        if on_progress is not None:
            on_progress(progress.value, time.perf_counter() - began)
    finally:
        for proc, _, conn in children:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
    return summarize(plan, outcomes, precompute_s, started_wall)


def summarize(plan: Plan, outcomes: list[Outcome], precompute_s: float, started_wall: float) -> dict[str, Any]:
    merged = array("d")
    for o in outcomes:
        merged.frombytes(o.latencies)
    ordered = sorted(merged)
    start = min(o.started for o in outcomes)
    end = max(o.ended for o in outcomes)
    elapsed = max(end - start, 1e-9)
    totals = {key: sum(getattr(o, key) for o in outcomes)
              for key in ("sent", "accept", "reject", "accounting_response", "other", "timeout", "bad_reply", "pool_replays")}  # fmt: skip
    answered = totals["accept"] + totals["reject"] + totals["accounting_response"] + totals["other"]
    ms = lambda v: round(v * 1000, 3)  # noqa: E731
    return {
        "target": {"host": plan.host, "auth_port": plan.auth_port, "acct_port": plan.acct_port},
        "kind": plan.kind,
        "method": plan.method if plan.kind != "acct" else None,
        "acct": plan.acct if plan.kind == "acct" else None,
        "users": len(plan.users),
        "window": plan.window,
        "processes": plan.processes,
        "message_authenticator": plan.message_authenticator,
        **totals,
        "answered": answered,
        "elapsed_s": round(elapsed, 4),
        "requests_per_s": round(answered / elapsed, 1),
        "latency_ms": {
            "p50": ms(percentile(ordered, 0.5)), "p99": ms(percentile(ordered, 0.99)),
            "p999": ms(percentile(ordered, 0.999)), "max": ms(ordered[-1] if ordered else 0.0),
            "mean": ms(sum(ordered) / len(ordered) if ordered else 0.0),
        },  # fmt: skip
        "precompute_s": round(precompute_s, 3),
        "pool_size": sum(o.pool_size for o in outcomes),
        "started_at": round(started_wall, 4),
        "ended_at": round(started_wall + elapsed, 4),
        "plan": {k: v for k, v in asdict(plan).items() if k not in ("users", "secret")},
    }
