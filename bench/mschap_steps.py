"""What each step of an MS-CHAPv2 login costs inside the server, next to PAP.

A step timed in a loop of its own runs with the caches and branch predictors to itself; inside a
request it competes with everything else the request runs, and on the machines we measure on the
same SHA-1 or DES call cost two to four times as much there. So this times the whole in-process
request (``bench.instructions``' server: no sockets, no reactor, no auth log) with the keys
derived, then again with the MS-CHAP steps replaced, one more each time, by constants: what a
replacement takes off is what the step cost in place. The MS-CHAPv2-over-PAP difference in the
last line is what is left (decoding the vendor attributes, encoding the longer reply).

    .venv/bin/python -m bench.mschap_steps            # 10,000 subscribers, best of 3 passes a figure

Bounded: a fixed number of passes over a fixed pool; no network at all.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.instructions import Null, _pool, _template, in_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=3, help="passes over the pool per figure (the best is kept)")
    parser.add_argument("--work", help="folder for the database and packets (default: a temporary one, removed)")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="aaa-mschap-steps-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.users, args.passes)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, users: int, passes: int) -> None:
    from aaa.radius import legacy_crypto, mschap

    config = str(_template(work, users))
    handle, answers, _ = in_process(config, "mschapv2")
    pools = {m: pickle.loads(_pool(work, m, users, users).read_bytes()) for m in ("pap", "mschapv2")}
    gc.collect()
    gc.freeze()
    out, port = Null(), [1024]

    def per_request(method: str) -> float:
        best = float("inf")
        for _ in range(passes):
            began = time.perf_counter()
            for data in pools[method]:
                port[0] += 1  # a new source port: the duplicate cache never answers
                handle(data, ("127.0.0.1", port[0]), out)
            best = min(best, time.perf_counter() - began)
        return best / len(pools[method]) * 1e6

    per_request("mschapv2")  # derives every subscriber's keys
    if not all(row[3] == "accept" for row in answers):
        raise SystemExit("bench.mschap_steps: a request was rejected; the figures would not be an MS-CHAPv2 login's")

    class Equal:
        @staticmethod
        def compare_digest(a: bytes, b: bytes) -> bool:
            return True

    zeros24, keys16 = bytes(24), (bytes(16), bytes(16))
    salted = (b"\x80\x01" + bytes(32), b"\x80\x02" + bytes(32))
    steps: list[tuple[str, list[tuple[Any, str, Any]]]] = [
        ("as is", []),
        ("ChallengeResponse (3 DES)", [(legacy_crypto, "des_ecb_prepared", lambda s, b: zeros24), (mschap, "hmac", Equal)]),
        ("ChallengeHash (SHA-1)", [(mschap, "challenge_hash", lambda p, a, u: bytes(8))]),
        ("authenticator response (2 SHA-1)", [(mschap, "_authenticator_hex", lambda h, n, c: b"0" * 40)]),
        ("MPPE start keys (3 SHA-1)", [(mschap, "_mppe_keys", lambda h, n: keys16)]),
        ("MPPE key attributes (4 MD5, salts)", [(mschap, "mppe_key_attributes", lambda *a: salted)]),
    ]  # fmt: skip
    saved = [(module, name, getattr(module, name)) for _, replaced in steps for module, name, _ in replaced]
    print(f"MS-CHAPv2 in process, {users} subscribers, keys derived, best of {passes} passes (µs a request)")
    previous = 0.0
    try:
        for label, replaced in steps:
            for module, name, value in replaced:
                setattr(module, name, value)
            now = per_request("mschapv2")
            print(f"{now:8.1f}" + (f"   {label} took {previous - now:5.1f}" if replaced else "   as is"))
            previous = now
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
    pap = per_request("pap")
    print(f"{pap:8.1f}   PAP; MS-CHAPv2 with every step above replaced costs {previous - pap:+.1f} over it")


if __name__ == "__main__":
    main()
