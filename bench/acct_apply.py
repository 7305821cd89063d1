"""How fast the accounting drainer applies journal records to ``sessions`` (records/s).

No server, no UDP: journal segments are written the way ``aaa serve`` writes them (``--segment``
records each, about 200 ms of a busy server), then ``AccountingDrainer.drain_blocking()`` applies
them and the wall time is taken. Two scenarios, as in ``make bench``:

* **flood**: Starts for ``--sessions`` sessions, ``--interims`` rounds of Interim-Update for all of
  them, then a Stop for each; the figure per phase and overall.
* **storm**: ``--sessions`` open sessions, then one Accounting-On of their NAS followed by
  ``--sessions`` new Starts (a NAS reconnecting); the new Starts must stay open, the old sessions
  must all be closed.

After each scenario the rows are checked (every record's session present, counters and closes as
sent): a wrong result is reported as an error, not as a rate. ``--tree PATH`` imports ``aaa`` from
another source tree (a ``git archive`` of an earlier commit) for a before/after comparison on
separate databases; the figures are printed as a table and, with ``--json``, as one JSON object.

    .venv/bin/python -m bench.acct_apply --url sqlite:////tmp/acct.sqlite3
    createdb -h 127.0.0.1 -U postgres aaa_bench_acct
    .venv/bin/python -m bench.acct_apply --url postgresql+psycopg://postgres@127.0.0.1:5432/aaa_bench_acct
    dropdb -h 127.0.0.1 -U postgres aaa_bench_acct

Bounded: the record count is fixed by the options, and ``--timeout`` (default 600 s) stops the run.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="database URL (a scratch database: the schema is migrated, rows are added)")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--interims", type=int, default=3, help="rounds of Interim-Update in the flood")
    parser.add_argument("--segment", type=int, default=2_000, help="records per journal segment")
    parser.add_argument("--batch-size", type=int, default=None, help="records per transaction (trees that have the option)")
    parser.add_argument("--history", type=int, default=0, help="closed sessions to insert first (a year of Marco Civil records)")
    parser.add_argument("--scenarios", default="flood,storm")
    parser.add_argument("--tree", help="import aaa from this source tree instead")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.tree:
        sys.path.insert(0, str(Path(args.tree).resolve()))
    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"no result within {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, int(args.timeout)))
    try:
        out = run(args)
    finally:
        signal.alarm(0)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(report(out))
    return 1 if any("error" in v for v in out["scenarios"].values()) else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    import aaa
    from aaa.db import load_models, migrate
    from aaa.db.engine import make_engine

    load_models()
    tree = Path(aaa.__file__).resolve().parents[1]
    engine = make_engine(args.url)
    migrate.upgrade(engine)
    nas_id = ensure_nas(engine)
    out: dict[str, Any] = {
        "tree": str(tree), "commit": git_commit(tree), "url": engine.url.render_as_string(hide_password=True),
        "dialect": engine.dialect.name, "sessions": args.sessions, "segment": args.segment, "history": args.history,
        "batch_size": args.batch_size, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "scenarios": {},
    }  # fmt: skip
    prefix = f"b{os.getpid():x}{int(time.time()) % 100000:x}"
    if args.history:
        out["history_insert_s"] = insert_history(engine, nas_id, prefix, args.history)
    with tempfile.TemporaryDirectory(prefix="acct-apply-") as work:
        bench = Bench(engine, nas_id, Path(work), args.segment, args.batch_size)
        for name in [s for s in args.scenarios.split(",") if s]:
            try:
                out["scenarios"][name] = {"flood": flood, "storm": storm}[name](bench, f"{prefix}{name[0]}", args)
            except Exception as exc:
                out["scenarios"][name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    engine.dispose()
    return out


def git_commit(tree: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return done.stdout.strip() or None


def ensure_nas(engine: Any) -> int:
    from sqlalchemy import insert, select

    from aaa.db.models import Nas

    with engine.begin() as conn:
        found = conn.execute(select(Nas.id).where(Nas.name == "bench-acct-apply")).scalar()
        if found is None:
            found = conn.execute(insert(Nas).values(name="bench-acct-apply", address="127.0.0.9", secret_enc="-").returning(Nas.id)).scalar()
    return int(found)


def insert_history(engine: Any, nas_id: int, prefix: str, count: int) -> float:
    import datetime as dt

    from sqlalchemy import insert

    from aaa.db.models import AcctSession

    began = time.perf_counter()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
    for start in range(0, count, 20_000):
        rows = [{"nas_id": nas_id, "acct_session_id": f"{prefix}h{i:x}", "login": f"user{i % 10000:05d}", "started_at": old,
                 "updated_at": old, "stopped_at": old + dt.timedelta(hours=1), "session_time": 3600, "input_octets": 1,
                 "output_octets": 1, "input_packets": 1, "output_packets": 1, "terminate_cause": "User-Request"}
                for i in range(start, min(count, start + 20_000))]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(AcctSession), rows)
    return round(time.perf_counter() - began, 2)


class Bench:
    """Writes records as journal segments and times the drainer applying them."""

    def __init__(self, engine: Any, nas_id: int, work: Path, segment: int, batch_size: int | None) -> None:
        self.engine = engine
        self.nas_id = nas_id
        self.work = work
        self.segment = segment
        self.batch_size = batch_size
        self.folders = 0

    def apply(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        from aaa.background import AccountingDrainer
        from aaa.journal import Journal

        self.folders += 1
        folder = self.work / f"j{self.folders}"
        folder.mkdir()
        for number, start in enumerate(range(0, len(records), self.segment), 1):
            lines = (json.dumps(r, separators=(",", ":")) + "\n" for r in records[start : start + self.segment])
            (folder / f"{number:010d}.jsonl").write_text("".join(lines))
        journal = Journal(folder, None, None)
        options: dict[str, Any] = {}
        if self.batch_size is not None and "batch_size" in inspect.signature(AccountingDrainer).parameters:
            options["batch_size"] = self.batch_size
        drainer = AccountingDrainer(None, None, journal, self.engine, lambda _: None, **options)
        began = time.perf_counter()
        cpu = time.process_time()
        result = drainer.drain_blocking()
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
        journal.close()
        return {"records": len(records), "applied": result.applied, "seconds": round(elapsed, 3),
                "records_per_s": round(len(records) / elapsed), "client_cpu_s": round(cpu, 3)}  # fmt: skip

    def rows(self, prefix: str) -> dict[str, tuple[Any, ...]]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT acct_session_id, stopped_at IS NOT NULL, terminate_cause, input_octets, session_time FROM sessions "
                     "WHERE nas_id = :nas AND acct_session_id LIKE :p"),
                {"nas": self.nas_id, "p": prefix + "%"},
            )  # fmt: skip
            return {r[0]: tuple(r[1:]) for r in found}


def record(kind: str, nas_id: int, sid: str, user: int, at: float, seq: int = 0) -> dict[str, Any]:
    """A journal record shaped like ``RadiusServer.accounting_record`` writes for a MikroTik PPPoE session."""
    rec: dict[str, Any] = {"t": kind, "nas": nas_id, "sid": sid, "login": f"user{user:05d}", "at": at, "sub": user + 1,
                           "interim": 300, "ip": f"10.{user >> 16 & 255}.{user >> 8 & 255}.{user & 255}",
                           "csid": f"02:00:00:{user >> 16 & 255:02X}:{user >> 8 & 255:02X}:{user & 255:02X}",
                           "called": "pppoe-fibra", "port": "ether2-clientes"}  # fmt: skip
    if kind != "start":
        rec.update({"time": 300 * seq, "in": 1_000_000 * seq, "out": 9_000_000 * seq, "pin": 1000 * seq, "pout": 8000 * seq})
    if kind == "stop":
        rec["cause"] = "User-Request"
    return rec


def flood(bench: Bench, prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    n, rounds, nas = args.sessions, args.interims, bench.nas_id
    base = time.time() - 300 * (rounds + 2)
    sids = [f"{prefix}-{i:x}" for i in range(n)]
    phases = {"start": [record("start", nas, sids[i], i, base + i * 1e-4) for i in range(n)]}
    phases["interim"] = [record("interim", nas, sids[i], i, base + 300 * r + i * 1e-4, r) for r in range(1, rounds + 1) for i in range(n)]
    phases["stop"] = [record("stop", nas, sids[i], i, base + 300 * (rounds + 1) + i * 1e-4, rounds + 1) for i in range(n)]
    out = {phase: bench.apply(records) for phase, records in phases.items()}
    total_records = sum(p["records"] for p in out.values())
    total_seconds = sum(p["seconds"] for p in out.values())
    out["all"] = {"records": total_records, "seconds": round(total_seconds, 3), "records_per_s": round(total_records / total_seconds)}
    rows = bench.rows(prefix)
    want = (True, "User-Request", 1_000_000 * (rounds + 1), 300 * (rounds + 1))
    wrong = [sid for sid in sids if rows.get(sid) != want]
    out["check"] = {"rows": len(rows), "expected": n, "wrong_or_missing": len(wrong)}
    if wrong:
        out["error"] = f"{len(wrong)} sessions wrong or missing, e.g. {wrong[0]}: {rows.get(wrong[0])}"
    return out


def storm(bench: Bench, prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    n, nas = args.sessions, bench.nas_id
    base = time.time() - 600
    old = [f"{prefix}o-{i:x}" for i in range(n)]
    new = [f"{prefix}n-{i:x}" for i in range(n)]
    opened = bench.apply([record("start", nas, old[i], i, base + i * 1e-4) for i in range(n)])
    reboot = base + 300
    storm_records = [{"t": "on", "nas": nas, "at": reboot}]
    storm_records += [record("start", nas, new[i], i, reboot + 0.001 + i * 1e-4) for i in range(n)]
    out = {"open_sessions": opened, "storm": bench.apply(storm_records)}
    rows = bench.rows(prefix)
    still_open = sum(1 for sid in old if not rows.get(sid, (False,))[0])
    wrongly_closed = sum(1 for sid in new if rows.get(sid, (True,))[0])
    out["check"] = {"old_still_open": still_open, "new_closed_or_missing": wrongly_closed}
    if still_open or wrongly_closed:
        out["error"] = f"{still_open} old sessions left open, {wrongly_closed} new sessions closed or missing"
    return out


def report(out: dict[str, Any]) -> str:
    lines = [f"aaa from {out['tree']} ({out['commit']}), {out['dialect']} {out['url']}, {out['sessions']} sessions, "
             f"segments of {out['segment']}, history {out['history']}, load average {out['load_average']:.2f} on {out['cpus']} CPUs"]  # fmt: skip
    for name, s in out["scenarios"].items():
        if "error" in s and len(s) == 1:
            lines.append(f"  {name}: ERROR {s['error']}")
            continue
        for phase, p in s.items():
            if isinstance(p, dict) and "records_per_s" in p:
                lines.append(f"  {name:6} {phase:14} {p['records']:>8} records {p['seconds']:>8.2f} s {p['records_per_s']:>8} records/s")
        lines.append(f"  {name:6} check          {s.get('check')}" + (f"  ERROR {s['error']}" if "error" in s else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
