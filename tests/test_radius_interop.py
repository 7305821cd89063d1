"""Interop with an independent client: FreeRADIUS's radclient and radtest against a real ``aaa serve``.

One server process per backend (SQLite file; PostgreSQL when AAA_TEST_DATABASE_URL is set), set up
the way an admin does it: ``aaa db upgrade``, ``aaa demo``, ``aaa serve``. The commands are the ones
README shows. Skipped when radclient is not installed (``make system-deps`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKENDS, _reset_pg
from radius_harness import ServerProcess, wait_for
from sqlalchemy import select

from aaa.db.engine import make_engine
from aaa.db.models import AcctSession

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("radclient") is None or shutil.which("radtest") is None, reason="radclient not installed"
    ),
]

GIGAWORD = 1 << 32


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp(f"interop-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'var' / 'aaa.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_migrated")
        _reset_pg(url)
    proc = ServerProcess(root, url)
    proc.aaa("db", "upgrade")
    proc.aaa("demo")
    proc.start()
    yield proc
    proc.kill()


def radclient(server: ServerProcess, attributes: str, kind: str = "auth", *, port: int | None = None,
              secret: str = "testing123", quick: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    if port is None:
        port = server.auth_port if kind == "auth" else server.acct_port
    options = ["-t", "1", "-r", "1"] if quick else []
    return subprocess.run(
        ["radclient", "-x", *options, f"127.0.0.1:{port}", kind, secret],
        input=attributes, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def radtest(
    server: ServerProcess, method: str, login: str, password: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["radtest", "-t", method, login, password, f"127.0.0.1:{server.auth_port}", "0", "testing123"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def stats(server: ServerProcess) -> dict[str, Any]:
    """What ``aaa stats --json`` shows, read from the metrics port directly (the CLI takes seconds to start)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/stats", timeout=5) as response:
        data: dict[str, Any] = json.load(response)
    return data


def test_readme_radclient_pap_gets_accept_with_the_plan_rate_limit(server: ServerProcess) -> None:
    out = radclient(server, "User-Name = joao, User-Password = joao2024, Message-Authenticator = 0x00")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Received Access-Accept" in out.stdout
    assert 'Mikrotik-Rate-Limit = "50M/100M"' in out.stdout
    assert "Framed-IP-Address = 100.64.10.20" in out.stdout
    assert "Message-Authenticator = 0x" in out.stdout.split("Received Access-Accept", 1)[1]


def test_radtest_chap_gets_accept(server: ServerProcess) -> None:
    out = radtest(server, "chap", "joao", "joao2024")
    assert "Received Access-Accept" in out.stdout, out.stdout + out.stderr


def test_radtest_mschap_gets_accept_with_mppe_keys(server: ServerProcess) -> None:
    out = radtest(server, "mschap", "joao", "joao2024")
    assert "Received Access-Accept" in out.stdout, out.stdout + out.stderr
    assert "MS-CHAP-MPPE-Keys = 0x" in out.stdout


def test_radtest_wrong_password_gets_reject_with_reason(server: ServerProcess) -> None:
    out = radtest(server, "pap", "joao", "errada")
    assert "Received Access-Reject" in out.stdout, out.stdout + out.stderr
    assert 'Reply-Message = "wrong password"' in out.stdout


def test_status_server_is_answered_on_both_ports(server: ServerProcess) -> None:
    auth = radclient(server, "Message-Authenticator = 0x00", "status", port=server.auth_port)
    acct = radclient(server, "Message-Authenticator = 0x00", "status", port=server.acct_port)
    assert "Received Access-Accept" in auth.stdout, auth.stdout + auth.stderr
    assert "Received Accounting-Response" in acct.stdout, acct.stdout + acct.stderr


def test_access_request_without_message_authenticator_is_dropped(server: ServerProcess) -> None:
    out = radclient(server, "User-Name = joao, User-Password = joao2024", quick=True)
    assert out.returncode != 0 and "No reply from server" in out.stdout + out.stderr
    assert stats(server)["dropped"].get("missing-message-authenticator", 0) >= 1


def test_wrong_secret_gets_no_accept(server: ServerProcess) -> None:
    out = radclient(
        server,
        "User-Name = joao, User-Password = joao2024, Message-Authenticator = 0x00",
        secret="wrong",
        quick=True,
    )
    assert "Access-Accept" not in out.stdout
    assert "No reply from server" in out.stdout + out.stderr
    assert stats(server)["dropped"].get("bad-message-authenticator", 0) >= 1


def test_accounting_start_interim_stop_shows_the_closed_session(server: ServerProcess) -> None:
    common = ('User-Name = joao, Acct-Session-Id = "81a0beef", NAS-IP-Address = 127.0.0.1, NAS-Port-Type = Ethernet, '
              'Calling-Station-Id = "4C:5E:0C:11:22:33", Framed-IP-Address = 100.64.10.20')  # fmt: skip
    for attributes in (
        f"Acct-Status-Type = Start, {common}",
        f"Acct-Status-Type = Interim-Update, {common}, Acct-Session-Time = 300, Acct-Input-Octets = 1000, Acct-Output-Octets = 2000",
        f"Acct-Status-Type = Stop, {common}, Acct-Session-Time = 600, Acct-Input-Octets = 5, Acct-Input-Gigawords = 1, "
        "Acct-Output-Octets = 7, Acct-Output-Gigawords = 2, Acct-Terminate-Cause = User-Request",
    ):
        out = radclient(server, attributes, "acct")
        assert "Received Accounting-Response" in out.stdout, out.stdout + out.stderr

    engine = make_engine(server.database_url)
    try:
        query = select(AcctSession.stopped_at).where(AcctSession.acct_session_id == "81a0beef")
        with engine.connect() as conn:
            wait_for(lambda: conn.execute(query).scalar(), what="the drainer to close the session")
    finally:
        engine.dispose()
    rows = json.loads(server.aaa("session", "list", "--login", "joao", "--json").stdout)
    (row,) = [r for r in rows if r["acct_session_id"] == "81a0beef"]
    assert row["stopped_at"] is not None
    assert (row["input_octets"], row["output_octets"]) == (GIGAWORD + 5, 2 * GIGAWORD + 7)
    assert row["session_time"] == 600 and row["terminate_cause"] == "User-Request"
    assert row["framed_ip"] == "100.64.10.20" and row["nas"] == "demo-router"


def test_the_auth_log_counters_are_exported(server: ServerProcess) -> None:
    """Written, waiting (in memory and in the spool), the spool's bytes, and dropped."""
    radclient(server, "User-Name = joao, User-Password = joao2024, Message-Authenticator = 0x00")
    data = stats(server)
    assert {"auth_log_written", "auth_log_pending", "auth_log_spool_bytes", "auth_log_dropped", "auth_log_held"} <= set(data)
    assert data["auth_log_dropped"] == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in ("aaa_auth_log_written_total", "aaa_auth_log_pending", "aaa_auth_log_spool_bytes", "aaa_auth_log_dropped_total", "aaa_auth_log_held"):
        assert f"\n{name} " in text, name


def helper_children(pid: int) -> list[int]:
    """The server's ``python -m aaa.apply_process`` children, whichever of its threads started them."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
    return [c for c in children if b"aaa.apply_process" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scheduling classes are Linux's")
def test_the_helper_children_are_the_apply_and_the_idle_auth_log_one(server: ServerProcess) -> None:
    """The accounting apply child (nice 19) and the auth log's child at SCHED_IDLE, and no other."""
    assert server.process is not None
    pid = server.process.pid
    deadline = time.monotonic() + 20
    while len(helper_children(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    radclient(server, "User-Name = joao, User-Password = joao2024, Message-Authenticator = 0x00")
    time.sleep(1.0)  # an auth log batch goes every 0.5 s
    ours = helper_children(pid)
    assert sorted(os.sched_getscheduler(c) for c in ours) == sorted([os.SCHED_OTHER, os.SCHED_IDLE])
    assert [os.getpriority(os.PRIO_PROCESS, c) for c in ours if os.sched_getscheduler(c) == os.SCHED_OTHER] == [19]


def test_sigterm_stops_the_server_with_exit_code_0(server: ServerProcess) -> None:
    """Runs last in the module: it stops the module's server."""
    assert server.stop(timeout=10) == 0
    assert "aaa serve stopping" in server.log.read_text()
