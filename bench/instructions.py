"""Instructions the server executes per request, counted by valgrind: an A/B that noise cannot move.

On a shared virtual machine the time a request takes swings by 2x from minute to minute (other
guests take the host's cores: ``top`` shows it as steal). ``valgrind --tool=callgrind`` counts the
instructions a program executes instead, the same count for the same code and input whatever the
machine is doing. This script drives one ``RadiusServer`` in process (``auth_datagram`` /
``acct_datagram`` called directly with precomputed packets: no sockets, no reactor, no auth log
thread, no database writes, so the count is the request's own decode, policy, crypto and encode),
once with N requests and once with the same N sent twice (from new source ports, so the duplicate
cache does not answer), and reports ``(twice - once) / N``: start-up, imports and the cache load
cancel out. The second pass of MS-CHAPv2 finds every subscriber's MS-CHAP keys derived; the
accounting methods' records are encoded as the journal encodes them and acknowledged at once.

    git -C . archive <commit> | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    .venv/bin/python -m bench.instructions base=/tmp/base new=. --methods pap,mschapv2,interim

``name=path`` imports ``aaa`` from that source tree (``PYTHONPATH``, this venv's packages). The
packets are built once by this tree's ``aaa.loadgen`` and shared by every tree. Runs two valgrind
processes at a time (about a minute each under valgrind for 2,000 requests); loopback is not used
at all. Needs ``valgrind`` (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
USERS = 10000
METHODS = {"pap": "auth", "chap": "auth", "mschapv2": "auth", "start": "acct", "interim": "acct", "stop": "acct"}


def _template(work: Path, users: int = USERS) -> Path:
    """A database with ``aaa demo --subscribers N`` and its configuration (made once)."""
    config = work / "etc" / "aaa.toml"
    if not (work / "aaa.sqlite3").exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f'[database]\nurl = "sqlite:///{work}/aaa.sqlite3"\n[security]\nkey_file = "{work}/aaa.key"\n'
            f'[logging]\nfile = "{work}/aaa.log"\n'
        )
        for args in (["db", "upgrade"], ["demo", "--subscribers", str(users)]):
            subprocess.run([str(BIN / "aaa"), "--config", str(config), *args], check=True, capture_output=True, timeout=900)
    return config


def _pool(work: Path, method: str, count: int, users: int = USERS) -> Path:
    """``count`` precomputed request datagrams for ``method`` to ``user00001``.. ``user<users>``
    (this tree's load generator)."""
    path = work / f"pool-{method}-{count}-{users}.pickle"
    if not path.exists():
        from aaa import loadgen

        logins = loadgen.users_from_pattern("user%05d", "pw%05d", 1, users)
        if METHODS[method] == "auth":
            plan = loadgen.Plan(users=logins, method=method, count=count)
        else:
            plan = loadgen.Plan(users=logins, kind="acct", acct=method, count=count, session_prefix="b1e55e")
        path.write_bytes(pickle.dumps([data for data, _ in loadgen.build_pool(plan, 0, count, 1)]))
    return path


def in_process(config: str, method: str) -> tuple[Any, list[tuple[Any, ...]], Any]:
    """A ``RadiusServer`` on the database of ``config``, without sockets: the datagram handler for
    ``method``, the auth log rows it produces and its journal (encodes, acknowledges at once)."""
    from aaa import journal as journal_module
    from aaa.cache import Cache
    from aaa.config import load
    from aaa.context import build_context
    from aaa.online import OnlineIndex
    from aaa.radius import codec
    from aaa.radius.server import RadiusServer
    from aaa.stages import StageRunner

    class Clock:
        @staticmethod
        def seconds() -> float:
            return 0.0  # the duplicate cache never expires anything: the same work every run

    class Journal:
        """Encodes each record as the journal does, and acknowledges it at once."""

        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def append(self, record: dict[str, Any], then: Any = None, args: tuple[Any, ...] = (), *_: Any) -> None:
            self.lines.append(journal_module._encode(record).encode() + b"\n")
            then(*args)

    settings = load(config)
    context = build_context(settings)
    cache = Cache(context.engine, context.vault)
    cache.load()
    answers: list[tuple[Any, ...]] = []
    journal = Journal()
    server = RadiusServer(
        reactor=Clock(), cache=cache, runner=StageRunner(context.pm, settings.radius.stages),
        dictionary=codec.load_dictionary(), journal=journal, online=OnlineIndex(), auth_log=answers.append,
        context=context, duplicate_seconds=3600.0,
    )  # fmt: skip
    return (server.auth_datagram if METHODS[method] == "auth" else server.acct_datagram), answers, journal


class Null:
    """Where replies go: nowhere."""

    def write(self, data: bytes, addr: Any) -> None:
        pass


def drive(config: str, pool: str, method: str, passes: int) -> None:
    """The measured program (run under valgrind with PYTHONPATH set to the tree): ``passes`` x the pool."""
    handle, answers, journal = in_process(config, method)
    packets = pickle.loads(Path(pool).read_bytes())
    gc.collect()
    gc.freeze()
    out = Null()
    for round_ in range(passes):
        for i, data in enumerate(packets):
            handle(data, ("127.0.0.1", 1024 + round_ * len(packets) + i), out)
    done = len(answers) if METHODS[method] == "auth" else len(journal.lines)
    accepted = all(row[3] == "accept" for row in answers)
    if done != passes * len(packets) or not accepted:
        raise SystemExit(f"{method}: {done} of {passes * len(packets)} requests handled, all accepted: {accepted}")


def count(tree: Path, config: Path, pool: Path, method: str, passes: int) -> int:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    env.pop("AAA_CONFIG", None)
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-P", __file__,
           "--drive", str(config), str(pool), method, str(passes)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"bench.instructions: {tree} {method} x{passes} failed: {tail}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        drive(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="+", help="name=path of a source tree")
    parser.add_argument("--methods", default="pap,mschapv2,interim", help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--requests", type=int, default=2000, help="requests per pass")
    parser.add_argument("--work", help="folder for the database and packets (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions: valgrind is not installed (apt-get install valgrind)")
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"bench.instructions: unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    trees = []
    for spec in args.trees:
        name, _, path = spec.partition("=")
        if not path or not (Path(path) / "aaa" / "__init__.py").exists():
            raise SystemExit(f"bench.instructions: {spec!r} is not name=path of a source tree with aaa/")
        trees.append((name, Path(path).resolve()))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="aaa-instructions-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config = _template(work)
        pools = {m: _pool(work, m, args.requests) for m in methods}
        jobs = [(name, tree, m, passes) for name, tree in trees for m in methods for passes in (1, 2)]
        with ThreadPoolExecutor(2) as pool:
            counts = list(pool.map(lambda j: count(j[1], config, pools[j[2]], j[2], j[3]), jobs))
        totals = {(j[0], j[2], j[3]): c for j, c in zip(jobs, counts, strict=True)}
        result = {
            name: {m: round((totals[(name, m, 2)] - totals[(name, m, 1)]) / args.requests) for m in methods}
            for name, _ in trees
        }
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    first = trees[0][0]
    print(f"instructions per request (callgrind, in process, {args.requests} requests a pass)")
    print(f"{'method':10s}" + "".join(f"{name:>14s}" for name, _ in trees) + "".join(f"{name + '/' + first:>16s}" for name, _ in trees[1:]))
    for m in methods:
        row = f"{m:10s}" + "".join(f"{result[name][m]:>14,d}" for name, _ in trees)
        row += "".join(f"{result[name][m] / result[first][m]:>16.3f}" for name, _ in trees[1:])
        print(row)


if __name__ == "__main__":
    main()
