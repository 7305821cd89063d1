"""The CoA/Disconnect client (RFC 5176) against the fake MikroTik NAS on loopback.

Time is a Clock the tests advance (retransmission timers move only when told); the sockets are real.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakenas import FakeNas, FakeNasProtocol, FakeNasThread
from reactor_helpers import ClockedReactor, Loop
from twisted.internet.defer import CancelledError, Deferred, gatherResults

from aaa.radius.coa import CoaClient, CoaResult
from aaa.radius.codec import Code, decode, encode_reply

SECRET = b"mikrotik-coa-secret"
SESSION = [
    ("User-Name", "cliente01"),
    ("Acct-Session-Id", "81a00012"),
    ("Framed-IP-Address", "100.64.0.10"),
    ("NAS-IP-Address", "127.0.0.1"),
]


class Rig:
    def __init__(self, loop: Loop, nas: FakeNas) -> None:
        self.loop = loop
        self.nas = nas
        self.clock = ClockedReactor(loop)
        self.port = loop.listen_udp(0, FakeNasProtocol(nas), "127.0.0.1").getHost().port
        self.client = CoaClient(self.clock, timeout=1.0, retries=2)

    def send(self, code: Code = Code.COA_REQUEST, attributes: list[tuple[str, Any]] | None = None) -> Deferred[CoaResult]:
        return self.client.send("127.0.0.1", self.port, SECRET, code, attributes if attributes is not None else SESSION)

    def received(self, n: int) -> None:
        """Turn the loop until the NAS has seen ``n`` datagrams (retransmissions included)."""
        self.loop.until(lambda: len(self.nas.requests(include_duplicates=True)) >= n)


@pytest.fixture
def loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture
def rig(loop: Loop) -> Iterator[Rig]:
    rig = Rig(loop, FakeNas(SECRET))
    yield rig
    rig.client.close()


@pytest.mark.parametrize(
    ("code", "name"), [(Code.COA_REQUEST, "CoA-Request"), (Code.DISCONNECT_REQUEST, "Disconnect-Request")]
)
def test_ack_carries_the_session_identity(rig: Rig, code: Code, name: str) -> None:
    attributes = [*SESSION, ("Mikrotik-Rate-Limit", "10M/50M")] if code is Code.COA_REQUEST else SESSION
    result = rig.loop.run_until(rig.send(code, attributes))
    assert result == CoaResult("ack", attempts=1, rtt_seconds=0.0)
    [request] = rig.nas.requests()
    assert request.code == name
    assert [(k, v) for k, v in request.attributes if k != "Message-Authenticator"] == attributes
    assert request.get("Message-Authenticator") is not None
    assert rig.client.acks == 1 and rig.client.sent == 1


def test_nak_gives_the_error_cause(rig: Rig) -> None:
    rig.nas.mode = "nak"
    rig.nas.error_cause = 503
    result = rig.loop.run_until(rig.send(Code.DISCONNECT_REQUEST))
    assert (result.outcome, result.error_cause, result.error_cause_name) == ("nak", 503, "Session-Context-Not-Found")
    assert rig.client.naks == 1


def test_nak_then_ack(loop: Loop) -> None:
    rig = Rig(loop, FakeNas(SECRET, mode="nak-then-ack", error_cause=404))
    first = loop.run_until(rig.send())
    second = loop.run_until(rig.send())
    assert (first.outcome, first.error_cause_name, second.outcome) == ("nak", "Invalid-Request", "ack")


def test_silence_retransmits_with_backoff_then_times_out(rig: Rig) -> None:
    rig.nas.mode = "silent"
    box: list[CoaResult] = []
    rig.send().addCallback(box.append)
    rig.received(1)
    rig.clock.advance(1.0)  # first timeout
    rig.received(2)
    rig.clock.advance(1.999)  # the second wait is twice the first
    rig.loop.turn(0)
    assert len(rig.nas.requests(include_duplicates=True)) == 2
    rig.clock.advance(0.001)
    rig.received(3)
    rig.clock.advance(3.999)
    assert box == []
    rig.clock.advance(0.001)
    assert box == [CoaResult("timeout", attempts=3)]
    assert rig.client.timeouts == 1 and rig.client.retransmitted == 2 and rig.client.in_flight() == 0


def test_retransmission_is_the_same_packet(rig: Rig) -> None:
    rig.nas.silent_first = 2
    d = rig.send()
    for n in (1, 2, 3):
        rig.received(n)
        if n < 3:
            rig.clock.advance(1.0 * 2 ** (n - 1))
    result = rig.loop.run_until(d)
    assert (result.outcome, result.attempts, result.rtt_seconds) == ("ack", 3, 3.0)
    sent = rig.nas.requests(include_duplicates=True)
    assert len({(r.identifier, r.authenticator) for r in sent}) == 1
    assert [r.answer for r in sent] == ["silent", "silent", "ack"]


def test_forged_and_stray_replies_are_ignored(loop: Loop) -> None:
    """A reply signed with another secret, or with another identifier, does not settle the request."""
    nas_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nas_socket.bind(("127.0.0.1", 0))
    nas_socket.settimeout(5)
    client = CoaClient(ClockedReactor(loop), timeout=1.0)
    try:
        d = client.send("127.0.0.1", nas_socket.getsockname()[1], SECRET, Code.COA_REQUEST, SESSION)
        data, source = nas_socket.recvfrom(4096)
        request = decode(data)
        nas_socket.sendto(encode_reply(request, Code.COA_ACK, [], b"wrong-secret"), source)
        loop.until(lambda: client.bad_replies == 1)
        stray = bytearray(encode_reply(request, Code.COA_ACK, [], SECRET))
        stray[1] = (stray[1] + 1) % 256
        nas_socket.sendto(bytes(stray), source)
        loop.until(lambda: client.unmatched == 1)
        nas_socket.sendto(encode_reply(request, Code.COA_ACK, [], SECRET, message_authenticator=False)[:19], source)
        loop.until(lambda: client.bad_replies == 2)
        nas_socket.sendto(encode_reply(request, Code.DISCONNECT_ACK, [], SECRET), source)  # wrong code
        loop.until(lambda: client.bad_replies == 3)
        assert not d.called
        nas_socket.sendto(encode_reply(request, Code.COA_NAK, [("Error-Cause", 506)], SECRET), source)
        result = loop.run_until(d)
        assert (result.outcome, result.error_cause_name) == ("nak", "Resources-Unavailable")
    finally:
        client.close()
        nas_socket.close()


def test_a_thousand_coas_are_each_answered_once(rig: Rig) -> None:
    results: list[Deferred[CoaResult]] = [
        rig.send(attributes=[("User-Name", f"cliente{n:04d}"), ("Acct-Session-Id", f"81a0{n:04x}")])
        for n in range(1000)
    ]
    assert rig.client.in_flight() == 1000 and rig.client.socket_count() == 4
    done = gatherResults(results)
    rig.loop.until(lambda: done.called or len(rig.nas.requests()) == 1000)
    while not done.called:  # datagrams the kernel dropped under the burst are retransmitted
        rig.clock.advance(1.0)
        rig.loop.turn()
    outcomes = rig.loop.run_until(done)
    assert {r.outcome for r in outcomes} == {"ack"}
    sessions = [r.get("Acct-Session-Id") for r in rig.nas.requests()]
    assert sorted(sessions) == sorted(f"81a0{n:04x}" for n in range(1000))
    assert [r.answer for r in rig.nas.requests(include_duplicates=True) if r.answer != "duplicate"] == ["ack"] * 1000


def test_ten_thousand_in_flight_to_one_nas(rig: Rig) -> None:
    """At most 256 per socket and destination: 10,000 requests open 40 sockets at once."""
    rig.nas.mode = "silent"
    pending = [rig.send(attributes=[("Acct-Session-Id", f"s{n}")]) for n in range(10_000)]
    assert rig.client.in_flight() == 10_000 and rig.client.socket_count() == 40
    rig.client.close()
    assert all(d.called for d in pending)


def test_requests_wait_when_every_socket_is_full(loop: Loop) -> None:
    nas = FakeNas(SECRET)
    rig = Rig(loop, nas)
    rig.client.max_sockets = 1
    pending = [rig.send(attributes=[("Acct-Session-Id", f"s{n}")]) for n in range(300)]
    assert rig.client.in_flight() == 256 and rig.client.queued() == 44
    outcomes = loop.run_until(gatherResults(pending))
    assert len(outcomes) == 300 and {r.outcome for r in outcomes} == {"ack"}
    assert rig.client.socket_count() == 1


def test_bad_destination_or_code_fails_the_deferred(rig: Rig) -> None:
    with pytest.raises(ValueError):
        rig.loop.run_until(rig.client.send("nas.example", 3799, SECRET, Code.COA_REQUEST, SESSION))
    with pytest.raises(ValueError):
        rig.loop.run_until(rig.client.send("127.0.0.1", 3799, SECRET, Code.ACCESS_REQUEST, SESSION))


def test_fake_nas_drops_requests_with_a_bad_signature(loop: Loop) -> None:
    """The fake NAS checks the secret: a request signed with another one is dropped and recorded."""
    nas = FakeNas(SECRET)
    with FakeNasThread(nas) as server:
        client = CoaClient(ClockedReactor(loop), timeout=1.0, retries=0)
        d = client.send("127.0.0.1", server.port, b"not-the-secret", Code.COA_REQUEST, SESSION)
        loop.until(lambda: bool(nas.rejected))
        assert nas.rejected[0][1] == "bad-authenticator" and nas.received == []
        client.close()
        assert loop.run_until(d).outcome == "timeout"


def test_fake_nas_as_a_process_records_json_lines(loop: Loop, tmp_path: Path) -> None:
    """``python tests/fakenas.py`` answers as told and writes one JSON line per request."""
    record = tmp_path / "coa.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fakenas.py")), "--port", "0", "--secret", SECRET.decode(),
         "--mode", "nak", "--error-cause", "Session-Context-Not-Found", "--record", str(record)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "fakenas did not start"
        port = int(process.stdout.readline().rsplit(":", 1)[1])
        client = CoaClient(ClockedReactor(loop), timeout=1.0)
        result = loop.run_until(client.send("127.0.0.1", port, SECRET, Code.DISCONNECT_REQUEST, SESSION))
        client.close()
        assert (result.outcome, result.error_cause) == ("nak", 503)
    finally:
        process.terminate()
        process.wait(timeout=10)
    [line] = record.read_text().splitlines()
    recorded = json.loads(line)
    assert (recorded["code"], recorded["answer"], recorded["error_cause"]) == ("Disconnect-Request", "nak", 503)
    assert [a for a in recorded["attributes"] if a[0] != "Message-Authenticator"] == [list(a) for a in SESSION]


def test_worst_case_is_the_sum_of_the_waits(loop: Loop) -> None:
    """The budget callers derive their timeouts from: 2 + 4 + 8 s with the defaults."""
    assert CoaClient(ClockedReactor(loop)).worst_case_seconds() == 14.0
    assert CoaClient(ClockedReactor(loop), timeout=0.3, retries=1).worst_case_seconds() == pytest.approx(0.9)


def test_a_cancelled_request_is_never_sent_again_nor_fires_later(rig: Rig) -> None:
    """Cancelling withdraws the request: no retransmission, its identifier freed, no late result."""
    rig.nas.mode = "silent"
    d = rig.send(Code.DISCONNECT_REQUEST)
    rig.received(1)
    errors: list[Any] = []
    d.addErrback(errors.append)
    d.cancel()
    assert len(errors) == 1 and errors[0].check(CancelledError)
    assert rig.client.in_flight() == 0 and rig.client.cancelled == 1
    rig.clock.advance(rig.client.worst_case_seconds() + 1)
    rig.loop.turn(0.05)
    assert len(rig.nas.requests(include_duplicates=True)) == 1, "retransmitted after the cancel"
    rig.nas.mode = "ack"
    assert rig.loop.run_until(rig.send()).outcome == "ack"


def test_a_cancelled_queued_request_leaves_the_queue(loop: Loop) -> None:
    nas = FakeNas(SECRET, mode="silent")
    rig = Rig(loop, nas)
    rig.client.max_sockets = 1
    on_wire = [rig.send(attributes=[("Acct-Session-Id", f"s{n}")]) for n in range(256)]
    queued = rig.send(attributes=[("Acct-Session-Id", "queued")])
    assert rig.client.queued() == 1
    queued.addErrback(lambda f: f.trap(CancelledError))
    queued.cancel()
    assert rig.client.queued() == 0 and rig.client.cancelled == 1
    for d in on_wire:
        d.addErrback(lambda f: f.trap(CancelledError))
        d.cancel()
    assert rig.client.in_flight() == 0
    loop.turn(0.05)
    assert "queued" not in {r.get("Acct-Session-Id") for r in nas.requests()}
    rig.client.close()
