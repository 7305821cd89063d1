"""The RADIUS server in process: RouterOS-shaped Access-Requests in, signed replies out.

A table of PPPoE and Hotspot requests (as RouterOS sends them, see shared/reference/mikrotik.md
section 2.2) with the reply each must get; then the MS-CHAP replies, the stage hooks a plugin can
use, RFC 5080 duplicates and the security drops. The server is the real one (cache from a SQLite
database with the demo data, the built-in authenticator and the policy plugin); only the reactor and
the transport are in memory.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from radius_harness import (
    HOTSPOT,
    NAS_ADDR,
    PPPOE,
    SECRET,
    Harness,
    accounting,
    chap,
    mschap1,
    mschap2,
    pap,
    status_server,
)

import policy.plugin as policy_plugin
from aaa import hookimpl
from aaa.cache import Cache
from aaa.context import Context, build_context
from aaa.demo import load_demo
from aaa.plugins import make_plugin_manager
from aaa.radius import codec, mschap
from aaa.radius.codec import Code, Packet
from aaa.services import nas, plans, subscribers
from aaa.stages import Request, Result
from policy.entitlement import PolicySettings

ACTOR = "admin:test"
MARIA_MAC = "4C:5E:0C:11:22:33"
OTHER_MAC = "3C:22:FB:01:02:03"
HOTSPOT_MAC = "AA:BB:CC:00:00:01"
GIGAWORD = 1 << 32
DATA_LIMIT = 100 * 10**9  # "100G"


@dataclass
class Demo:
    ctx: Context
    cache: Cache
    root: Path

    def harness(self, *plugins: Any) -> Harness:
        pm = make_plugin_manager(extra=plugins) if plugins else self.ctx.pm
        return Harness(self.cache, pm)


@pytest.fixture(scope="module")
def demo(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo data plus subscribers in every status, a data-limited plan and a NAS without the MA switch."""
    root = tmp_path_factory.mktemp("pipeline")
    shutil.copy(sqlite_template, root / "aaa.sqlite3")
    ctx = build_context(make_settings(root, f"sqlite:///{root / 'aaa.sqlite3'}"))
    load_demo(ctx)
    plans.add_plan(
        ctx,
        name="Franquia 100G",
        down="20M",
        up="10M",
        data_limit="100G",
        mikrotik_group="franquia",
        actor=ACTOR,
    )
    for login, status in (("ana", "disabled"), ("bruno", "terminated"), ("carla", "suspended")):
        subscribers.add_subscriber(ctx, login=login, password=f"{login}12345", plan="Fibra 100M", actor=ACTOR)
        subscribers.set_status(ctx, login, status, actor=ACTOR)
    subscribers.add_subscriber(ctx, login="dani", password="dani12345", plan="Franquia 100G", actor=ACTOR)
    nas.add_nas(
        ctx,
        name="legacy-router",
        address="127.0.0.2",
        secret="legacy-secret",
        require_message_authenticator=False,
        actor=ACTOR,
    )
    cache = Cache(ctx.engine, ctx.vault)
    cache.load()
    yield Demo(ctx, cache, root)
    ctx.close()


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the policy plugin's defaults (its settings are module state)."""
    monkeypatch.setattr(policy_plugin, "settings", PolicySettings())


def pppoe(login: str, mac: str = MARIA_MAC) -> list[tuple[str, Any]]:
    return [("User-Name", login), *PPPOE, ("Calling-Station-Id", mac)]


def hotspot(login: str, mac: str = OTHER_MAC) -> list[tuple[str, Any]]:
    return [("User-Name", login), *HOTSPOT, ("Calling-Station-Id", mac)]


def signed(reply: Packet | None) -> Packet:
    """The reply exists and carries a valid Message-Authenticator (decode_reply checked it)."""
    assert reply is not None, "the request was dropped"
    assert reply.has_message_authenticator
    return reply


@dataclass
class Case:
    id: str
    request: Callable[[], bytes]
    code: Code
    attributes: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


ACCEPT, REJECT = Code.ACCESS_ACCEPT, Code.ACCESS_REJECT
PLAN_100M = {"Mikrotik-Rate-Limit": "50M/100M", "Acct-Interim-Interval": 300}
CASES = [
    Case("pppoe-pap-static-ip", lambda: pap(pppoe("joao", OTHER_MAC), "joao2024"), ACCEPT,
         {**PLAN_100M, "Framed-IP-Address": "100.64.10.20"}),
    Case("pppoe-chap-burst-plan", lambda: chap(pppoe("maria"), "senha123"), ACCEPT,
         {"Mikrotik-Rate-Limit": "150M/300M 200M/400M 120M/240M 16/16 8", "Framed-IP-Address": None}),
    Case("pppoe-pap-data-limit", lambda: pap(pppoe("dani"), "dani12345"), ACCEPT,
         {"Mikrotik-Rate-Limit": "10M/20M", "Mikrotik-Total-Limit": DATA_LIMIT % GIGAWORD,
          "Mikrotik-Total-Limit-Gigawords": DATA_LIMIT // GIGAWORD, "Mikrotik-Group": "franquia"}),
    Case("hotspot-chap", lambda: chap(hotspot("user00001"), "pw00001"), ACCEPT, PLAN_100M),
    Case("hotspot-pap", lambda: pap(hotspot("user00002"), "pw00002"), ACCEPT, PLAN_100M),
    Case("hotspot-mac-auth-pap", lambda: pap(hotspot(HOTSPOT_MAC, HOTSPOT_MAC), ""), ACCEPT, PLAN_100M),
    Case("hotspot-mac-auth-chap", lambda: chap(hotspot(HOTSPOT_MAC, HOTSPOT_MAC), ""), ACCEPT, PLAN_100M),
    Case("hotspot-mac-auth-lowercase-mac", lambda: pap(hotspot(HOTSPOT_MAC, HOTSPOT_MAC.lower().replace(":", "-")), ""),
         ACCEPT, PLAN_100M),
    Case("unknown-user", lambda: pap(pppoe("ninguem"), "qualquer"), REJECT, message="unknown user"),
    Case("wrong-password-pap", lambda: pap(pppoe("joao"), "errada"), REJECT, message="wrong password"),
    Case("wrong-password-chap", lambda: chap(hotspot("user00001"), "errada"), REJECT, message="wrong password"),
    Case("disabled", lambda: pap(pppoe("ana"), "ana12345"), REJECT, message="account disabled"),
    Case("terminated", lambda: chap(pppoe("bruno"), "bruno12345"), REJECT, message="contract terminated"),
    Case("suspended", lambda: pap(pppoe("carla"), "carla12345"), REJECT, message="service suspended for non-payment"),
    Case("mac-not-matching-binding", lambda: pap(pppoe("maria", "4C:5E:0C:99:99:99"), "senha123"), REJECT,
         message="MAC address not allowed for this login"),
    Case("hotspot-mac-login-from-another-mac", lambda: pap(hotspot(HOTSPOT_MAC, "AA:BB:CC:00:00:02"), ""), REJECT,
         message="MAC address not allowed for this login"),
    Case("no-credentials", lambda: codec.encode_request(Code.ACCESS_REQUEST, 1, pppoe("joao"), SECRET), REJECT,
         message="no credentials in the request"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_routeros_request_gets_expected_reply(demo: Demo, case: Case) -> None:
    h = demo.harness()
    reply = signed(h.auth(case.request()))
    assert reply.code == case.code
    for name, value in case.attributes.items():
        assert reply.get(name) == value, name
    if case.code == ACCEPT:
        assert reply.get("Class", b"").startswith(b"aaa:"), "Class for accounting to echo"
        assert reply.get("Reply-Message") is None
    else:
        assert reply.get("Reply-Message") == case.message
        assert reply.get("Mikrotik-Rate-Limit") is None, "a reject carries no authorization"
    assert [row[3] for row in h.auth_log] == ["accept" if case.code == ACCEPT else "reject"]


def test_reject_is_logged_with_its_reason(demo: Demo) -> None:
    h = demo.harness()
    h.auth(pap(pppoe("joao"), "errada"))
    (row,) = h.auth_log
    assert row[1:6] == ("joao", demo.cache.nas_for("127.0.0.1").id, "reject", "pap", "wrong password")


def test_class_names_subscriber_and_plan(demo: Demo) -> None:
    reply = signed(demo.harness().auth(pap(pppoe("joao"), "joao2024")))
    sub = demo.cache.subscriber("joao")
    assert reply.get("Class") == f"aaa:{sub.id}:{sub.plan_id}".encode()


def test_accept_follows_a_plan_change_after_the_cache_refresh(demo: Demo) -> None:
    """The plan's share of the Accept is reused between logins, and rebuilt once the plan changed."""
    plans.add_plan(demo.ctx, name="Cache 30M", down="30M", up="15M", actor=ACTOR)
    subscribers.add_subscriber(demo.ctx, login="rafa", password="rafa12345", plan="Cache 30M", actor=ACTOR)
    demo.cache.refresh()
    h = demo.harness()
    first = signed(h.auth(pap(pppoe("rafa", OTHER_MAC), "rafa12345")))
    again = signed(h.auth(pap(pppoe("rafa", OTHER_MAC), "rafa12345")))
    assert first.get("Mikrotik-Rate-Limit") == again.get("Mikrotik-Rate-Limit") == "15M/30M"
    plans.update_plan(demo.ctx, "Cache 30M", down="60M", up="30M", session_timeout=3600, actor=ACTOR)
    assert signed(h.auth(pap(pppoe("rafa", OTHER_MAC), "rafa12345"))).get("Mikrotik-Rate-Limit") == "15M/30M"  # not refreshed yet
    demo.cache.refresh()
    after = signed(h.auth(pap(pppoe("rafa", OTHER_MAC), "rafa12345")))
    assert after.get("Mikrotik-Rate-Limit") == "30M/60M" and after.get("Session-Timeout") == 3600


def test_over_simultaneous_use_is_rejected(demo: Demo) -> None:
    h = demo.harness()
    h.online.started("user00003", demo.cache.nas_for("127.0.0.1").id, "81a000ff")
    reply = signed(h.auth(pap(pppoe("user00003"), "pw00003")))
    assert reply.code == REJECT
    assert reply.get("Reply-Message") == "already online (1 of 1 sessions)"


def test_suspended_with_blocked_treatment_gets_blocked_profile(demo: Demo) -> None:
    settings = make_settings(
        demo.root, str(demo.ctx.engine.url), plugins={"policy": {"suspended_treatment": "blocked"}}
    )
    policy_plugin.aaa_startup(context=dataclasses.replace(demo.ctx, settings=settings), reactor=None)
    reply = signed(demo.harness().auth(pap(pppoe("carla"), "carla12345")))
    assert reply.code == ACCEPT
    assert reply.get("Mikrotik-Address-List") == "aaa_blocked"
    assert reply.get("Mikrotik-Rate-Limit") == "512k/512k"


def test_mschap1_accept_carries_mppe_keys_that_decrypt_with_the_secret(demo: Demo) -> None:
    request, nt_key = mschap1(pppoe("joao"), "joao2024")
    reply = signed(demo.harness().auth(request))
    assert reply.code == ACCEPT
    keys = mschap.decrypt_ms_chap_mppe_keys(reply.get("MS-CHAP-MPPE-Keys"), SECRET, request[4:20])
    assert keys[8:] == nt_key
    assert reply.get("Mikrotik-Rate-Limit") == "50M/100M"


def test_mschap1_wrong_password_gets_ms_chap_error(demo: Demo) -> None:
    request, _ = mschap1(pppoe("joao"), "errada")
    reply = signed(demo.harness().auth(request))
    assert reply.code == REJECT
    assert reply.get("MS-CHAP-Error") == b"\x09E=691 R=0"


def test_mschap2_accept_carries_success_and_mppe_keys_that_decrypt_with_the_secret(demo: Demo) -> None:
    attributes = [a for a in pppoe("maria") if a[0] != "User-Name"]
    login = mschap2(attributes, "maria", "senha123")
    reply = signed(demo.harness().auth(login.request))
    assert reply.code == ACCEPT
    expected = mschap.generate_authenticator_response(
        "senha123", login.nt_response, login.peer_challenge, login.challenge, b"maria"
    )
    assert reply.get("MS-CHAP2-Success") == b"\x0b" + expected
    send, recv = mschap.mschap2_mppe_keys("senha123", login.nt_response)
    authenticator = login.request[4:20]
    assert mschap.decrypt_mppe_key(reply.get("MS-MPPE-Send-Key"), SECRET, authenticator) == send
    assert mschap.decrypt_mppe_key(reply.get("MS-MPPE-Recv-Key"), SECRET, authenticator) == recv
    assert reply.get("Mikrotik-Rate-Limit") == "150M/300M 200M/400M 120M/240M 16/16 8"


def test_mschap2_after_a_password_change_uses_the_new_password(demo: Demo) -> None:
    """The MS-CHAP key material kept per subscriber goes with the old cache entry."""
    subscribers.add_subscriber(demo.ctx, login="lia", password="antiga123", plan="Fibra 100M", actor=ACTOR)
    demo.cache.refresh()
    h = demo.harness()
    attributes = [a for a in pppoe("lia", OTHER_MAC) if a[0] != "User-Name"]
    assert signed(h.auth(mschap2(attributes, "lia", "antiga123").request)).code == ACCEPT
    subscribers.update_subscriber(demo.ctx, "lia", password="nova12345", actor=ACTOR)
    demo.cache.refresh()
    assert signed(h.auth(mschap2(attributes, "lia", "antiga123").request)).code == REJECT
    assert signed(h.auth(mschap2(attributes, "lia", "nova12345").request)).code == ACCEPT


def test_mschap2_wrong_password_gets_ms_chap_error_691(demo: Demo) -> None:
    attributes = [a for a in pppoe("maria") if a[0] != "User-Name"]
    reply = signed(demo.harness().auth(mschap2(attributes, "maria", "errada").request))
    assert reply.code == REJECT
    assert reply.get("MS-CHAP-Error").startswith(b"\x0bE=691 R=0 C=")
    assert reply.get("MS-MPPE-Send-Key") is None


# --- plugins in the path (stage hooks) -------------------------------------------------------------


class StagePlugin:
    """Rejects one login, adds a reply attribute to every accept, observes accounting."""

    def __init__(self) -> None:
        self.authorized: list[str] = []
        self.preacct: list[str] = []
        self.accounting: list[int] = []

    @hookimpl
    def aaa_authorize(self, request: Request) -> Result | None:
        self.authorized.append(request.login)
        if request.login == "user00002":
            return request.reject("blocked by the test plugin")
        return None

    @hookimpl
    def aaa_post_auth(self, request: Request) -> Result | None:
        if request.accepted:
            request.add_reply("Filter-Id", "from-plugin")
            return Result.UPDATED
        return None

    @hookimpl
    def aaa_preacct(self, request: Request) -> Result | None:
        self.preacct.append(request.login)
        return None

    @hookimpl
    def aaa_accounting(self, request: Request) -> Result | None:
        self.accounting.append(request.packet.get("Acct-Status-Type"))
        return None


def test_plugin_can_reject_with_its_reason(demo: Demo) -> None:
    reply = signed(demo.harness(StagePlugin()).auth(pap(pppoe("user00002"), "pw00002")))
    assert reply.code == REJECT
    assert reply.get("Reply-Message") == "blocked by the test plugin"


def test_plugin_adds_reply_attributes_to_an_accept(demo: Demo) -> None:
    reply = signed(demo.harness(StagePlugin()).auth(pap(pppoe("joao"), "joao2024")))
    assert reply.code == ACCEPT
    assert reply.get("Filter-Id") == "from-plugin"
    assert reply.get("Mikrotik-Rate-Limit") == "50M/100M"


def test_a_stage_answering_later_delays_the_reply_until_it_fires(demo: Demo) -> None:
    """A hook returning a Deferred makes the pipeline asynchronous; the reply goes out when it fires."""
    from twisted.internet.defer import Deferred

    pending: list[Deferred[Any]] = []

    class Later:
        @hookimpl
        def aaa_post_auth(self, request: Request) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            pending.append(d)
            return d

    h = demo.harness(Later())
    request = pap(pppoe("joao", OTHER_MAC), "joao2024")
    assert h.send_auth(request) == []  # the pipeline waits on the Deferred
    pending[0].callback("updated")
    (reply,) = h.transport.sent
    assert codec.decode_reply(reply[0], request[4:20], SECRET).code == ACCEPT
    assert [row[3] for row in h.auth_log] == ["accept"]


def test_plugin_observes_accounting_after_it_is_durable(demo: Demo) -> None:
    plugin = StagePlugin()
    h = demo.harness(plugin)
    reply = h.acct(accounting("Start", "81a00010", "joao"))
    assert reply is not None and reply.code == Code.ACCOUNTING_RESPONSE
    assert plugin.preacct == ["joao"] and plugin.accounting == [1]
    assert [r["sid"] for r in h.journal.records] == ["81a00010"]


# --- RFC 5080 duplicates, security ---------------------------------------------------------------


def test_retransmission_gets_the_same_reply_bytes_without_running_the_pipeline(demo: Demo) -> None:
    plugin = StagePlugin()
    h = demo.harness(plugin)
    request = pap(pppoe("joao"), "joao2024")
    first, again = h.send_auth(request), h.send_auth(request)
    assert first == again and len(first) == 1
    assert plugin.authorized == ["joao"]
    assert h.counters.duplicates == 1 and len(h.auth_log) == 1


def test_duplicate_window_expires(demo: Demo) -> None:
    plugin = StagePlugin()
    h = demo.harness(plugin)
    request = pap(pppoe("joao"), "joao2024")
    h.send_auth(request)
    h.reactor.advance(h.server.duplicate_seconds + 1)
    h.server.purge_duplicates()
    h.send_auth(request)
    assert plugin.authorized == ["joao", "joao"]


def test_duplicate_window_holds_until_it_expires(demo: Demo) -> None:
    plugin = StagePlugin()
    h = demo.harness(plugin)
    request = pap(pppoe("joao"), "joao2024")
    h.send_auth(request)
    h.reactor.advance(h.server.duplicate_seconds - 0.5)
    h.server.purge_duplicates()
    assert h.send_auth(request) and plugin.authorized == ["joao"]  # still answered from the cache


def test_new_requests_expire_old_replies_without_waiting_for_the_purge(demo: Demo) -> None:
    """Each request drops expired entries as it is remembered, so the cache never holds a backlog."""
    h = demo.harness()
    for identifier in range(3):
        h.send_auth(pap(pppoe("joao"), "joao2024", identifier=identifier))
    h.reactor.advance(h.server.duplicate_seconds + 1)
    for identifier in range(3, 5):  # two new requests expire all three old entries (two each at most)
        h.send_auth(pap(pppoe("joao"), "joao2024", identifier=identifier))
    assert len(h.server._dups) == 2 and len(h.server._expiry) == 2


def test_the_periodic_purge_drops_a_bounded_number_of_entries_per_call(demo: Demo) -> None:
    """After a burst the purge clears the cache over several calls, never in one long pass."""
    h = demo.harness()
    for identifier in range(3):
        h.send_auth(pap(pppoe("joao"), "joao2024", identifier=identifier))
    h.reactor.advance(h.server.duplicate_seconds + 1)
    h.server.purge_duplicates(limit=2)
    assert len(h.server._dups) == 1
    h.server.purge_duplicates(limit=2)
    assert not h.server._dups and not h.server._expiry


def test_duplicate_cache_keys_are_flat_tuples_of_plain_values(demo: Demo) -> None:
    """No nested address tuple: a key of plain values is untracked by the collector's first young
    pass whatever order it finds things in, so tens of thousands of them never reach the older
    generations' collections."""
    import gc

    h = demo.harness()
    h.send_auth(pap(pppoe("joao"), "joao2024"))
    key, entry = next(iter(h.server._dups.items()))
    assert key == (*NAS_ADDR, 1, key[-1]) and all(type(x) in (str, int, bytes) for x in key)
    assert h.server._expiry[0][1] is key
    gc.collect(0)
    assert not gc.is_tracked(key) and not gc.is_tracked(entry)


def test_a_key_forgotten_and_seen_again_keeps_its_new_window(demo: Demo) -> None:
    """An expiry queued for an earlier use of the same key must not cut the new window short."""
    plugin = StagePlugin()
    h = demo.harness(plugin)
    request = pap(pppoe("joao"), "joao2024")
    h.send_auth(request)
    key = next(iter(h.server._dups))
    h.server._dups.pop(key)  # as after a failed pipeline: the retransmission runs it again
    h.reactor.advance(h.server.duplicate_seconds - 1)
    h.send_auth(request)
    h.reactor.advance(2)  # past the first window, inside the second
    h.server.purge_duplicates()
    h.send_auth(request)
    assert plugin.authorized == ["joao", "joao"] and h.counters.duplicates == 1


def test_direct_writer_sends_the_reply_to_the_source() -> None:
    import socket

    from aaa.radius.server import DirectWriter

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:
        server.bind(("127.0.0.1", 0))
        nas.bind(("127.0.0.1", 0))
        nas.settimeout(5)
        DirectWriter(server).write(b"reply", nas.getsockname())
        assert nas.recvfrom(100) == (b"reply", server.getsockname())


def test_unknown_nas_is_dropped_and_counted(demo: Demo) -> None:
    h = demo.harness()
    assert h.send_auth(pap(pppoe("joao"), "joao2024"), ("192.0.2.9", 1812)) == []
    assert h.send_acct(accounting("Start", "81a00011", "joao"), ("192.0.2.9", 1813)) == []
    assert h.counters.dropped == {"unknown-nas": 2}


def test_missing_message_authenticator_is_dropped_when_required(demo: Demo) -> None:
    h = demo.harness()
    assert h.send_auth(pap(pppoe("joao"), "joao2024", ma=False)) == []
    assert h.counters.dropped == {"missing-message-authenticator": 1}
    assert h.auth_log == []


def test_missing_message_authenticator_is_accepted_when_the_nas_switch_is_off(demo: Demo) -> None:
    h = demo.harness()
    legacy = b"legacy-secret"
    request = pap(pppoe("joao"), "joao2024", secret=legacy, ma=False)
    reply = signed(h.auth(request, secret=legacy, source=("127.0.0.2", 1645)))
    assert reply.code == ACCEPT


def test_bad_message_authenticator_is_dropped(demo: Demo) -> None:
    h = demo.harness()
    assert h.send_auth(pap(pppoe("joao"), "joao2024", secret=b"wrong-secret")) == []
    assert h.counters.dropped == {"bad-message-authenticator": 1}


def test_bad_accounting_authenticator_is_dropped(demo: Demo) -> None:
    h = demo.harness()
    request = bytearray(accounting("Start", "81a00012", "joao"))
    request[4] ^= 0xFF
    assert h.send_acct(bytes(request)) == []
    assert h.send_acct(accounting("Start", "81a00012", "joao", secret=b"wrong-secret")) == []
    assert h.counters.dropped == {"bad-authenticator": 2}
    assert h.journal.records == []


def test_status_server_is_answered_on_both_ports(demo: Demo) -> None:
    h = demo.harness()
    assert signed(h.auth(status_server())).code == ACCEPT
    assert signed(h.acct(status_server())).code == Code.ACCOUNTING_RESPONSE
    assert h.counters.status_server == 2


def test_access_request_on_the_accounting_port_is_dropped(demo: Demo) -> None:
    h = demo.harness()
    assert h.send_acct(pap(pppoe("joao"), "joao2024")) == []
    assert sum(h.counters.dropped.values()) == 1


def test_source_port_is_part_of_the_duplicate_key(demo: Demo) -> None:
    """Two NAS processes behind one address may reuse an identifier: not a retransmission."""
    h = demo.harness()
    request = pap(pppoe("joao"), "joao2024")
    h.send_auth(request, NAS_ADDR)
    h.send_auth(request, (NAS_ADDR[0], NAS_ADDR[1] + 1))
    assert h.counters.duplicates == 0 and len(h.auth_log) == 2


def test_the_young_generation_is_collected_every_few_hundred_requests(demo: Demo) -> None:
    """What each request leaves behind for a while (duplicate-cache entry, auth log row) must not pile
    up in the collector's youngest generation: CPython's own trigger counts deallocations of older
    objects against it and under load let tens of thousands gather, then walked them in one pass
    of tens of ms. The collector's own trigger is off here, so only the server's can keep it small."""
    import gc

    from aaa.radius.server import YOUNG_COLLECTION_EVERY

    h = demo.harness()
    requests = [pap(pppoe("joao"), "joao2024", identifier=i % 256) for i in range(4 * YOUNG_COLLECTION_EVERY)]
    gc.collect()
    gc.disable()
    try:
        young = []
        for request in requests:
            h.send_auth(request)
            young.append(len(gc.get_objects(0)))
    finally:
        gc.enable()
    assert len(h.auth_log) == len(requests) and h.counters.duplicates == 0
    per_request = young[YOUNG_COLLECTION_EVERY - 2] / (YOUNG_COLLECTION_EVERY - 1)  # before the first collection
    assert per_request >= 3  # what the server keeps per request: key, entry, expiry, auth log row
    assert max(young[YOUNG_COLLECTION_EVERY:]) <= (YOUNG_COLLECTION_EVERY + 2) * per_request  # not 4 x as many


def test_settle_heap_collects_then_sets_the_live_objects_aside() -> None:
    """``aaa serve`` freezes what it holds after start-up: later full collections skip it."""
    import gc

    from aaa.serve import settle_heap

    try:
        settle_heap()
        assert gc.get_freeze_count() > 0 and gc.get_count()[0] < 100
    finally:
        gc.unfreeze()
