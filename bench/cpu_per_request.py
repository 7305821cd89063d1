"""Server CPU per answered request, for several code trees in one run (A/B of hot-path changes).

The machine is shared, so requests/s swing by 2x from minute to minute; the CPU time the server
process spent (``/proc/PID/stat`` utime + stime, all its threads and forked workers) divided by the
requests it answered moves far less, and is the figure this script reports, next to requests/s
and latency for reference. Trees are run in turn, round after round, so a slow minute hits all.

    git -C . archive <commit> | tar -x -C /tmp/base          # the "before" tree
    python -m bench.cpu_per_request base=/tmp/base new=. pyrad=naive-pyrad \\
        --rounds 2 --count 20000 --methods pap,chap,mschapv2,mschapv2,storm

``name=path`` runs ``aaa serve`` from that source tree (``PYTHONPATH=path``, this venv's packages);
``name=naive-pyrad`` runs the shared tools' bare pyrad loop (PAP only) with the same 10,000 users.
Methods: ``pap``, ``chap``, ``mschapv2`` (a method given twice is measured twice; the second
``mschapv2`` finds the MS-CHAP keys of every subscriber already derived), ``radload`` (PAP sent
by the shared tools' C generator, compiled into the work folder for the run: the Python ``aaa
bench`` tops out around 12-17k requests/s, so only this one shows a server's requests/s), and
``storm`` (10,000 open sessions, Accounting-On, then 10,000 logins + 10,000 Accounting-Starts,
window 64). Server on core 1 and the generator on core 0 unless ``--unpinned``. Every run is
bounded in count and time; servers are stopped by their PID. Loopback only.

On a busy machine, ``--together --repeat N`` starts every tree's server at once (all pinned to
the server core; only the one being measured is busy) and takes each method's figure from every
tree in turn, the methods list N times over (``--once K``: the first K methods only the first
time, e.g. a leading ``mschapv2`` that derives every subscriber's MS-CHAP keys); compare the
medians, and ratios of figures taken next to each other.

Besides CPU per request each figure has requests/s, p50/p99/p99.9 latency and ``runq_wait_pct``:
how much of the run the server's main thread spent runnable but not running (``/proc/PID/task/
PID/schedstat``), i.e. waiting for its core while other processes used it. On a shared machine
that, more than the server, sets the latency tail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
AAA = str(BIN / "aaa")
NAIVE_PYRAD = Path("/work/shared/tools/radius-bench/naive_pyrad_server.py")
TICK = os.sysconf("SC_CLK_TCK")
USERS = 10000


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def runq_wait_seconds(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed: {done.stderr[-800:]}")
    return done.stdout


class Runner:
    def __init__(self, work: Path, *, pinned: bool) -> None:
        self.work = work
        self.pinned = pinned
        self.work.mkdir(parents=True, exist_ok=True)
        self.template = self._template()
        self._radload: Path | None = None

    def radload(self) -> Path:
        """The C generator, compiled on first use into a temporary folder (removed by :meth:`close`)."""
        if self._radload is None:
            from bench.run import build_radload

            self._radload = build_radload(Path(tempfile.mkdtemp(prefix="radload-", dir=self.work)))
        return self._radload

    def close(self) -> None:
        if self._radload is not None:
            shutil.rmtree(self._radload.parent, ignore_errors=True)
            self._radload = None

    def _template(self) -> Path:
        """One database with ``aaa demo --subscribers 10000``, copied for every server."""
        path = self.work / "template.sqlite3"
        if not path.exists():
            etc = self.work / "template" / "etc"
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "aaa.toml").write_text(f'[database]\nurl = "sqlite:///{path}"\n[security]\nkey_file = "{self.work}/aaa.key"\n')
            run([AAA, "--config", str(etc / "aaa.toml"), "db", "upgrade"], timeout=300)
            run([AAA, "--config", str(etc / "aaa.toml"), "demo", "--subscribers", str(USERS)], timeout=900)
        return path

    def bench(self, ports: tuple[int, int], *args: str, timeout: float = 90) -> dict[str, Any]:
        cmd = (["taskset", "-c", "0"] if self.pinned else []) + [
            AAA, "bench", "--json", "--quiet", "--auth-port", str(ports[0]), "--acct-port", str(ports[1]),
            "--first", "1", "--last", str(USERS), *args,
        ]  # fmt: skip
        return dict(json.loads(run(cmd, timeout=timeout)))

    def start(self, name: str, tree: str, workers: int) -> tuple[subprocess.Popen[bytes], tuple[int, int], Path]:
        folder = self.work / name
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "etc").mkdir(parents=True)
        ports = (free_port(), free_port())
        env = dict(os.environ)
        env.pop("AAA_CONFIG", None)
        if tree == "naive-pyrad":
            users = folder / "users.txt"
            users.write_text("".join(f"user{i:05d} pw{i:05d}\n" for i in range(1, USERS + 1)))
            cmd = [sys.executable, str(NAIVE_PYRAD), "--impl", "twisted", "--auth-port", str(ports[0]),
                   "--acct-port", str(ports[1]), "--users", str(users)]  # fmt: skip
        else:
            shutil.copy(self.template, folder / "aaa.sqlite3")
            shutil.copy(self.work / "aaa.key", folder / "aaa.key")
            (folder / "etc" / "aaa.toml").write_text(
                f'[database]\nurl = "sqlite:///{folder}/aaa.sqlite3"\n[radius]\nauth_port = {ports[0]}\nacct_port = {ports[1]}\n'
                f'[accounting]\njournal_dir = "{folder}/journal"\n[metrics]\nport = {free_port(socket.SOCK_STREAM)}\n'
                f'[logging]\nfile = "{folder}/aaa.log"\n[security]\nkey_file = "{folder}/aaa.key"\n'
            )
            env["PYTHONPATH"] = str(Path(tree).resolve())
            cmd = [sys.executable, "-P", "-c", "import sys, aaa; from aaa.cli import main; print(aaa.__file__, flush=True); sys.exit(main())",
                   "--config", str(folder / "etc" / "aaa.toml"), "serve", "--workers", str(workers)]  # fmt: skip
        cmd = (["taskset", "-c", "1"] if self.pinned else []) + cmd
        log = (folder / "server.out").open("wb")
        # cwd: with ``-c`` the current folder comes first on sys.path, before PYTHONPATH's tree
        proc = subprocess.Popen(cmd, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return proc, ports, folder

    def measure(self, name: str, tree: str, methods: list[str], count: int, workers: int, processes: int,
                repeat: int = 1, first_only: int = 0) -> dict[str, Any]:  # fmt: skip
        """Start one server, run its figures, stop it."""
        return self.measure_together([(name, tree)], methods, count, workers, processes, repeat, first_only)[name]

    def measure_together(self, trees: list[tuple[str, str]], methods: list[str], count: int, workers: int, processes: int,
                         repeat: int = 1, first_only: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
        """Start every server (all on the server core, idle but for the one being measured), then run
        the figures method by method, each method for every tree in turn: a slow minute on a shared
        machine then hits every tree's figure of that method alike."""
        servers: dict[str, tuple[subprocess.Popen[bytes], tuple[int, int], list[int], str]] = {}
        results: dict[str, dict[str, Any]] = {name: {} for name, _ in trees}
        try:
            for name, tree in trees:
                proc, ports, folder = self.start(name, tree, workers)
                servers[name] = (proc, ports, [proc.pid], tree)
                self._wait_up(proc, ports, folder)
                self.bench(ports, "--count", "3000", "--duration", "30")  # warm-up (PAP)
                if workers > 1:
                    servers[name][2].extend(int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split())
            time.sleep(1.2)
            order = methods + methods[first_only:] * (repeat - 1)
            for turn, method in enumerate(order):
                for name, _ in trees[turn % len(trees):] + trees[: turn % len(trees)]:  # who goes first rotates
                    proc, ports, pids, tree = servers[name]
                    if tree == "naive-pyrad" and method not in ("pap", "radload"):
                        continue
                    seen = sum(1 for k in results[name] if k == method or k.startswith(f"{method}-"))
                    key = method if not seen else f"{method}-again" if seen == 1 else f"{method}-{seen + 1}"
                    results[name][key] = self._figure(name, proc, ports, pids, method, count, processes)
        finally:
            for proc, *_ in servers.values():
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGTERM)
            for proc, *_ in servers.values():
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        return results

    def _figure(self, name: str, proc: subprocess.Popen[bytes], ports: tuple[int, int], pids: list[int], method: str,
                count: int, processes: int) -> dict[str, Any]:  # fmt: skip
        if method == "storm":
            return self._storm(ports, pids, name)
        before, waited = sum(cpu_seconds(p) for p in pids), runq_wait_seconds(proc.pid)
        if method == "radload":
            figures = self._radload_pap(ports, count)
        else:
            extra = ["--processes", str(processes), "--window", str(32 * processes)] if processes > 1 else ["--window", "32"]
            r = self.bench(ports, "--method", method, "--count", str(count), "--duration", "40", *extra)
            figures = {
                "requests_per_s": round(r["requests_per_s"]), "answered": r["answered"], "accept": r["accept"],
                "reject": r["reject"], "timeout": r["timeout"], "p50_ms": r["latency_ms"]["p50"],
                "p99_ms": r["latency_ms"]["p99"], "p999_ms": r["latency_ms"]["p999"], "elapsed_s": r["elapsed_s"],
            }  # fmt: skip
        figures["runq_wait_pct"] = round((runq_wait_seconds(proc.pid) - waited) / max(figures["elapsed_s"], 1e-9) * 100)
        time.sleep(1.2)  # the auth log's batch of these requests is written within a second
        used = sum(cpu_seconds(p) for p in pids) - before
        figures["us_per_request"] = round(used / max(figures["answered"], 1) * 1e6, 1)
        return figures

    def _radload_pap(self, ports: tuple[int, int], count: int) -> dict[str, Any]:
        from bench.run import radload_pap

        r = radload_pap(self.radload(), ports[0], count=count, warmup=1000, cpu="0" if self.pinned else None)
        return {
            "requests_per_s": round(r["rps"]), "answered": r["completed"], "accept": r["accept"], "reject": r["reject"],
            "timeout": r["timeouts"], "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "p999_ms": r["p999_us"] / 1000,
            "elapsed_s": r["elapsed_s"],
        }  # fmt: skip

    def _wait_up(self, proc: subprocess.Popen[bytes], ports: tuple[int, int], folder: Path) -> None:
        began = time.monotonic()
        while time.monotonic() - began < 90:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(folder / 'server.out').read_text()[-800:]}")
            try:
                if self.bench(ports, "--count", "1", "--window", "1", "--timeout", "0.3", timeout=20)["accept"]:
                    return
            except RuntimeError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not answer within 90 s")

    def _storm(self, ports: tuple[int, int], pids: list[int], name: str) -> dict[str, Any]:
        tag = f"{os.getpid():x}{name}"
        acct = ["--request", "acct", "--window", "32"]
        self.bench(ports, *acct, "--acct-status", "start", "--session-prefix", f"op{tag}", "--count", str(USERS), "--duration", "40")
        self.bench(ports, "--request", "acct", "--acct-status", "on", "--count", "1", "--window", "1")
        time.sleep(1.5)
        before = sum(cpu_seconds(p) for p in pids)
        r = self.bench(ports, "--request", "login", "--session-prefix", f"st{tag}", "--count", str(2 * USERS), "--window", "64",
                       "--timeout", "3", "--duration", "60")  # fmt: skip
        used = sum(cpu_seconds(p) for p in pids) - before
        self.bench(ports, "--request", "acct", "--acct-status", "on", "--count", "1", "--window", "1")
        return {"seconds": r["elapsed_s"], "us_per_request": round(used / max(r["answered"], 1) * 1e6, 1), "answered": r["answered"],
                "timeout": r["timeout"], "reject": r["reject"], "p99_ms": r["latency_ms"]["p99"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", help="name=path of a source tree, or name=naive-pyrad")
    parser.add_argument("--count", type=int, default=20000, help="requests per measured run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--methods", default="pap,chap,mschapv2")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1, help="sender processes (window 32 each)")
    parser.add_argument("--unpinned", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="run the methods this many times per server start (the "
                        "first --once of them only once): alternating methods many times shows their ratio through the "
                        "minute-to-minute swings of a shared machine")
    parser.add_argument("--together", action="store_true", help="start every tree's server at once (all on the server "
                        "core) and take each method's figure from every tree in turn, instead of one server after another")
    parser.add_argument("--once", type=int, default=0, help="how many of the first methods run once only (e.g. 1 for a "
                        "leading mschapv2 that derives every subscriber's keys)")
    parser.add_argument("--work", default="/tmp/aaa-cpu-per-request")
    args = parser.parse_args()
    runner = Runner(Path(args.work), pinned=not args.unpinned)
    out: dict[str, list[dict[str, Any]]] = {}
    trees = [(spec.partition("=")[0], spec.partition("=")[2]) for spec in args.trees]
    try:
        for round_ in range(args.rounds):
            batches = [trees] if args.together else [[t] for t in trees]
            for batch in batches:
                results = runner.measure_together(batch, args.methods.split(","), args.count, args.workers, args.processes,
                                                  args.repeat, args.once)  # fmt: skip
                for name, result in results.items():
                    out.setdefault(name, []).append(result)
                    for method, figures in result.items():
                        print(f"round {round_} {name:8} {method:16} {figures}", file=sys.stderr, flush=True)
    finally:
        runner.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
