"""The accounting apply process (aaa/apply_process.py): the drainer's database work in a child
process at a lower priority. It applies what the thread would, survives its own death without
losing or double-counting a record, hands its log lines to the server, never outlives the server,
and ``aaa serve`` stops cleanly with it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from radius_harness import ServerProcess, accounting, wait_for
from sqlalchemy import select
from test_accounting_durability import Client, server_fixture  # noqa: F401  (fixture)
from twisted.logger import globalLogPublisher

from aaa.apply_process import ApplyProcess
from aaa.context import Context, build_context
from aaa.db.models import AcctSession, Nas
from aaa.demo import load_demo

T0 = 1_780_000_000.0


@pytest.fixture
def nas_id(ctx: Context) -> int:
    load_demo(ctx, count=0)
    with ctx.sessions() as s:
        return int(s.scalar(select(Nas.id)) or 0)


@pytest.fixture
def process(ctx: Context, tmp_path: Path) -> Iterator[ApplyProcess]:
    proc = ApplyProcess(
        ctx.engine.url.render_as_string(hide_password=False), batch_size=50,
        dead_letters=tmp_path / "dead.jsonl", nice=5,
    )  # fmt: skip
    yield proc
    proc.close()


def write_segment(folder: Path, number: int, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{number:010d}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def starts(nas_id: int, first: int, count: int) -> list[dict[str, Any]]:
    return [{"t": "start", "nas": nas_id, "sid": f"s{i:05d}", "login": f"user{i % 7}", "at": T0 + i} for i in range(first, first + count)]


def stops(nas_id: int, first: int, count: int) -> list[dict[str, Any]]:
    return [{"t": "stop", "nas": nas_id, "sid": f"s{i:05d}", "login": f"user{i % 7}", "at": T0 + 500 + i, "time": 500,
             "in": 1000 + i, "cause": "User-Request"} for i in range(first, first + count)]  # fmt: skip


def sessions(ctx: Context) -> dict[str, AcctSession]:
    with ctx.sessions() as s:
        return {r.acct_session_id: r for r in s.scalars(select(AcctSession))}


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_applies_segments_in_a_lower_priority_child_and_deletes_them(
    ctx: Context, nas_id: int, process: ApplyProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "journal"
    segments = [write_segment(folder, 1, starts(nas_id, 0, 120)), write_segment(folder, 2, stops(nas_id, 0, 60))]
    result, error = process.apply(segments)
    assert error is None
    assert result.applied == 180 and len(result.started) == 120 and len(result.stopped) == 60
    assert process.pid is not None and process.pid != os.getpid()
    assert nice_of(process.pid) == min(19, nice_of(os.getpid()) + 5)
    assert not any(p.exists() for p in segments)
    rows = sessions(ctx)
    assert len(rows) == 120
    assert rows["s00007"].stopped_at is not None and rows["s00007"].input_octets == 1007
    assert rows["s00100"].stopped_at is None
    # the same records again (a retry after a lost answer): nothing counted twice
    again = write_segment(folder, 3, stops(nas_id, 0, 60))
    assert process.apply([again])[1] is None
    assert sessions(ctx)["s00007"].input_octets == 1007


def test_a_child_killed_between_batches_is_replaced_and_nothing_is_lost(
    ctx: Context, nas_id: int, process: ApplyProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "journal"
    assert process.apply([write_segment(folder, 1, starts(nas_id, 0, 40))])[1] is None
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not alive(first), timeout=10, what="the child to die")
    pending = write_segment(folder, 2, stops(nas_id, 0, 40))
    result, error = process.apply([pending])
    if error is not None:  # the kill raced the send: the segment stays, and the next apply takes it
        assert pending.exists()
        result, error = process.apply([pending])
    assert error is None and result.applied == 40
    assert process.starts == 2 and process.pid != first
    rows = sessions(ctx)
    assert len(rows) == 40 and all(r.stopped_at is not None for r in rows.values())


def test_records_the_database_refuses_go_to_the_dead_letter_file_and_the_log_line_reaches_the_server(
    ctx: Context, nas_id: int, process: ApplyProcess, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []
    observer: Any = seen.append
    globalLogPublisher.addObserver(observer)
    try:
        bad = {"t": "start", "nas": 999_999, "sid": "orphan", "login": "nobody", "at": T0}  # no such NAS
        result, error = process.apply([write_segment(tmp_path / "journal", 1, [*starts(nas_id, 0, 5), bad])])
    finally:
        globalLogPublisher.removeObserver(observer)
    assert error is None and len(result.started) == 5 and result.rejected == 1
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [r["sid"] for r in dead] == ["orphan"]
    lines = [e.get("text", "") for e in seen if "could not be applied" in str(e.get("text", ""))]
    assert len(lines) == 1 and "Acct-Session-Id orphan" in lines[0] and "dead.jsonl" in lines[0]


def test_the_child_dies_with_its_parent(database_url: str, tmp_path: Path) -> None:
    """SIGKILL to the server alone (the OOM killer, say): its apply process must not live on and
    apply the journal beside the next server's start-up replay."""
    script = textwrap.dedent(f"""
        import sys, time
        from aaa.apply_process import ApplyProcess
        proc = ApplyProcess({database_url!r}, batch_size=10, dead_letters=None)
        proc.start()
        print(proc.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: not alive(child), timeout=10, what="the apply process to end with its parent")


def apply_children(pid: int) -> list[int]:
    found = []
    for entry in Path(f"/proc/{pid}/task").iterdir():
        for child in (entry / "children").read_text().split():
            if b"aaa.apply_process" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


@pytest.mark.slow
def test_aaa_serve_applies_through_its_child_and_a_sigterm_to_the_whole_group_loses_nothing(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    """As systemd stops a service (SIGTERM to every process of it): the child ignores it, the
    server drains the journal through it a last time, then both exit."""
    server.start()
    assert server.process is not None
    child = wait_for(lambda: apply_children(server.process.pid), timeout=15, what="the apply process")[0]
    # the default apply_nice, set by the child once it has imported (the auth log child is at 19 too, and SCHED_IDLE)
    wait_for(lambda: nice_of(child) == 19, timeout=15, what="the apply process at nice +19")
    client = Client(server.acct_port)
    for i in range(200):
        client.send(i, accounting("Start", f"81b{i:05x}", f"user{i:05d}", identifier=i), f"81b{i:05x}")
    client.collect(2.0, until=200)
    client.close()
    assert len(client.acknowledged) == 200
    os.killpg(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    wait_for(lambda: not alive(child), timeout=10, what="the apply process to exit")
    ctx = build_context(make_settings(tmp_path, database_url, security={"key_file": str(tmp_path / "var" / "aaa.key")}))
    try:
        assert set(sessions(ctx)) >= set(client.acknowledged)
    finally:
        ctx.close()
    assert not [p for p in (tmp_path / "var" / "journal").rglob("*.jsonl") if p.stat().st_size]
