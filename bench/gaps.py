"""What makes PAP's latency tail: the moments replies stop coming, and (with ``--perf``) what ran then.

Starts ``aaa serve`` pinned on core 1 as ``make bench`` does (SQLite, or a scratch PostgreSQL
database with ``--pg``; 10,000 demo subscribers), warms it up for 6 s, then from core 0 keeps 32
PAP requests outstanding for ``--rounds`` rounds of 4 s with a loop of its own that notes when
each reply arrives. Per round it prints the rate, p50 / p99, the share of replies over 3 ms, and
every gap over 1 ms between two replies (``seconds into the round:ms``). A stall of the server, or
of the generator, shows as one gap that delays the whole window of 32 requests; the p99 at W=32
is made of such moments.

With ``--perf`` (root, and ``perf`` installed) it records the scheduler on both cores during the
rounds (``perf sched record -k CLOCK_MONOTONIC``) and prints, for every gap over 1.5 ms, what else
ran on either core meanwhile: other threads of the server, its helper children, kernel threads,
the host's own processes. That is how docs/performance.md ("What still took the reactor's core")
found the auth log child's scheduler ticks and the pool threads' polls.

    .venv/bin/python -m bench.gaps                 # this tree, SQLite
    .venv/bin/python -m bench.gaps --perf --pg      # PostgreSQL, with the scheduler's record
    .venv/bin/python -m bench.gaps /tmp/base        # another tree (imported from its folder)

Bounded: 6 s of warm-up plus ``--rounds`` x 4 s of load; nothing but loopback.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WINDOW = 32
ROUND_SECONDS = 4.0


def one_round(
    sock: socket.socket, address: tuple[str, int], pool: list[tuple[bytes, int]], first: int
) -> tuple[float, list[tuple[float, float]]]:
    """One round from packet ``first`` of ``pool``: (start, [(reply time into the round, latency)])."""
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN)
    now = time.perf_counter
    pending: list[float | None] = [None] * 256
    outstanding, k = 0, first
    replies: list[tuple[float, float]] = []
    start = now()
    end = start + ROUND_SECONDS
    try:
        while now() < end:
            while outstanding < WINDOW:
                packet = pool[k % len(pool)][0]
                sock.sendto(packet, address)
                pending[packet[1]] = now()
                outstanding += 1
                k += 1
            poller.poll(0.01)
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                sent = pending[data[1]]
                if sent is None:
                    continue
                t = now()
                replies.append((t - start, t - sent))
                pending[data[1]] = None
                outstanding -= 1
    finally:
        poller.close()
    return start, replies


def report(replies: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Print the round's figures; returns its gaps over 1 ms as (seconds into the round, ms)."""
    n = len(replies)
    latencies = sorted(r[1] for r in replies)
    over = sum(1 for r in replies if r[1] > 0.003)
    print(f"  {n / ROUND_SECONDS:>8.0f}/s  p50 {latencies[n // 2] * 1e3:.2f}  p99 {latencies[int(n * 0.99)] * 1e3:.2f} ms"
          f"  over 3 ms {over / n * 100:.2f} %", flush=True)  # fmt: skip
    gaps = [
        (replies[i][0], (replies[i][0] - replies[i - 1][0]) * 1e3)
        for i in range(1, n)
        if replies[i][0] - replies[i - 1][0] > 0.001
    ]
    print(f"  gaps over 1 ms: {len(gaps)}  " + " ".join(f"{at:.3f}:{ms:.1f}" for at, ms in gaps), flush=True)
    return gaps


def blame(
    perf_data: Path, rounds: list[tuple[float, list[tuple[float, float]]]], server: int, generator: int
) -> None:
    """For each gap over 1.5 ms, what ran on either core meanwhile (from ``perf sched timehist``)."""
    text = subprocess.run(
        ["perf", "sched", "timehist", "-i", str(perf_data)], capture_output=True, text=True, check=False
    ).stdout
    runs = []  # (began, ended, cpu, task, ms)
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[1].startswith("["):
            continue
        try:
            ended, ms = float(parts[0]), float(parts[5])
        except ValueError:
            continue
        runs.append((ended - ms / 1e3, ended, parts[1], parts[2], ms))
    if not runs:
        print("perf recorded nothing (root and perf are needed)")
        return
    mine = {f"aaa[{server}]", f"python[{generator}]", "<idle>"}
    totals: collections.Counter[str] = collections.Counter()
    gaps_seen = 0
    for start, gaps in rounds:
        for at, ms in gaps:
            ended = start + at
            began = ended - ms / 1e3
            if ms < 1.5 or began < runs[0][0] or ended > runs[-1][1]:
                continue
            gaps_seen += 1
            others = [
                (cpu, task, run_ms)
                for b, e, cpu, task, run_ms in runs
                if e > began and b < ended and task not in mine and run_ms >= 0.1
            ]
            print(
                f"gap {ms:.1f} ms at {at:.3f}: "
                + (
                    ", ".join(f"{cpu}{task} {run_ms:.2f}" for cpu, task, run_ms in others)
                    or "nothing else ran"
                )
            )
            for cpu, task, _ in {(c, t, 0) for c, t, _ in others}:
                totals[cpu + re.sub(r"\[[\d/]+\]$", "", task)] += 1
    print(f"{gaps_seen} gaps over 1.5 ms; what ran during them, by how many gaps: {totals.most_common(12)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tree", nargs="?", help="another tree to measure (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", action="store_true", help="a scratch PostgreSQL database instead of SQLite")
    parser.add_argument(
        "--perf", action="store_true", help="record the scheduler and say what ran in each gap"
    )
    args = parser.parse_args()
    if args.tree:
        tree = str(Path(args.tree).resolve())
        sys.path.insert(0, tree)
        os.environ["PYTHONPATH"] = tree  # the server and its children import that tree too
    from aaa import loadgen
    from bench import run as bench_run

    if args.perf and not shutil.which("perf"):
        raise SystemExit("--perf needs perf (apt-get install linux-perf)")
    work = Path(tempfile.mkdtemp(prefix="aaa-gaps-"))
    name = f"aaa_gaps_{os.getpid()}"
    if args.pg and not bench_run.psql(f"CREATE DATABASE {name}"):
        raise SystemExit("PostgreSQL on 127.0.0.1:5432 did not answer")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}" if args.pg else f"sqlite:///{work}/aaa.db"
    target = bench_run.Ours("ours-pg" if args.pg else "ours-sqlite", work, url)
    target.launch(pinned=True)
    recorder: Any = None
    try:
        bench_run.warm_up(target)
        os.sched_setaffinity(0, {int(bench_run.GEN_CPU)})
        plan = loadgen.Plan(users=loadgen.users_from_pattern("user%05d", "pw%05d", 1, bench_run.USERS), auth_port=target.auth_port,
                            acct_port=target.acct_port, secret=bench_run.SECRET, duration=ROUND_SECONDS)  # fmt: skip
        plan.check()
        per_round = int(ROUND_SECONDS * 40_000)
        # never the same packet twice: a repeat would be answered from the duplicate cache
        pool = loadgen.build_pool(plan, 0, per_round * args.rounds, 1)
        perf_data = work / "sched.data"
        if args.perf:
            recorder = subprocess.Popen(["perf", "sched", "record", "-k", "CLOCK_MONOTONIC", "-a", "-o", str(perf_data), "--",
                                         "sleep", str(args.rounds * (ROUND_SECONDS + 0.5) + 1)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(0.5)
        rounds = []
        for number in range(args.rounds):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                print(f"round {number + 1}:", flush=True)
                start, replies = one_round(sock, ("127.0.0.1", target.auth_port), pool, number * per_round)
                rounds.append((start, report(replies)))
            finally:
                sock.close()
            time.sleep(0.3)
        if recorder is not None:
            recorder.wait(timeout=30)
            recorder = None
            assert target.proc is not None
            blame(perf_data, rounds, target.proc.pid, os.getpid())
    finally:
        if recorder is not None:
            recorder.kill()
        target.shutdown()
        if args.pg:
            bench_run.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
