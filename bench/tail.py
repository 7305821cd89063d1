"""PAP's latency tail on one tree, or on several in turn: the A/B behind a p99 change.

Each round starts ``aaa serve`` of every tree in turn (SQLite, or a scratch PostgreSQL database
with ``--pg``; 10,000 demo subscribers; pinned on core 1, as ``make bench`` does), warms it up for
6 s, then takes ``--runs`` PAP runs of 4 s at W=32 from core 0 and prints, per run, the rate and
the p50 / p99 / p99.9 latency. On a shared machine one run proves little: alternate the trees
over several rounds and compare the medians.

    .venv/bin/python -m bench.tail                                   # this tree
    git worktree add /tmp/base <commit>
    .venv/bin/python -m bench.tail --rounds 3 base=/tmp/base new=.   # the two trees alternated

A tree other than this one is imported from its own folder (``PYTHONPATH``), so it needs no
virtual environment of its own. Bounded: ``rounds x trees x (6 + 4 x runs)`` seconds of load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(runs: int, pg: bool) -> None:
    """In the tree this module was imported from: one server, warmed up, ``runs`` PAP runs."""
    from bench import run as bench_run

    work = Path(tempfile.mkdtemp(prefix="aaa-tail-"))
    name = f"aaa_tail_{os.getpid()}"
    if pg and not bench_run.psql(f"CREATE DATABASE {name}"):
        raise SystemExit("PostgreSQL on 127.0.0.1:5432 did not answer")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}" if pg else f"sqlite:///{work}/aaa.db"
    target = bench_run.Ours("ours-pg" if pg else "ours-sqlite", work, url)
    target.launch(pinned=True)
    try:
        bench_run.warm_up(target)
        for _ in range(runs):
            r = bench_run.pick(bench_run.bench(target, "--method", "pap", "--duration", "4", "--window", "32"))
            print(f"  {r['requests_per_s']:>8.0f}/s  p50 {r['p50_ms']:.2f}  p99 {r['p99_ms']:.2f}  p99.9 {r['p999_ms']:.2f} ms"
                  f"  timeouts {r['timeout']}", flush=True)  # fmt: skip
    finally:
        target.shutdown()
        if pg:
            bench_run.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*", metavar="NAME=FOLDER", help="trees to alternate (default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="4 s PAP runs per server")
    parser.add_argument("--pg", action="store_true", help="a scratch PostgreSQL database instead of SQLite")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a tree's own part
    args = parser.parse_args()
    if args.one:
        one(args.runs, args.pg)
        return
    trees = [tuple(t.split("=", 1)) for t in args.trees] or [("this", str(ROOT))]
    for number in range(1, args.rounds + 1):
        for name, folder in trees:
            print(f"round {number}, {name} ({folder}):", flush=True)
            env = {**os.environ, "PYTHONPATH": str(Path(folder).resolve())}
            # this file as a script: the tree's own bench.run and aaa come first (it need not have this file)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--one", "--runs", str(args.runs)] + (["--pg"] if args.pg else [])
            subprocess.run(cmd, env=env, check=True, timeout=120 + 10 * args.runs)


if __name__ == "__main__":
    main()
