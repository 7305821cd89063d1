"""Subscriber search as the TUI runs it, on 100,000 subscribers (a benchmark, not a test).

``python -m bench.tui_search [--subscribers 100000] [--runs 20]`` makes a temporary project (its own
``etc/aaa.toml``, SQLite database and key), loads ``aaa demo --subscribers N``, gives every generated
subscriber a static IP and a MAC (so IP and MAC searches look among N values), then times
``subscribers.list_subscribers(ctx, search=..., limit=50)`` (the TUI's first page) for typical
searches and prints p50 and max in milliseconds per kind, as one JSON line per kind.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: kind -> the text typed in the search box (demo data: maria's customer, generated userNNNNN)
SEARCHES = {
    "part of a login": "user0421",
    "part of a name": "da sil",
    "an IP": "10.1.134.7",
    "a MAC": "02:00:00:01:86:9f",
    "a CPF": "529.982.247-25",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aaa-bench-") as tmp:
        config = Path(tmp) / "etc" / "aaa.toml"
        config.parent.mkdir()
        (Path(tmp) / "var").mkdir()
        shutil.copy(ROOT / "etc" / "aaa.toml", config)
        aaa = [str(Path(sys.executable).with_name("aaa")), "--config", str(config)]
        began = time.perf_counter()
        subprocess.run([*aaa, "db", "upgrade"], check=True, capture_output=True)
        subprocess.run([*aaa, "demo", "--subscribers", str(args.subscribers)], check=True, capture_output=True)
        print(json.dumps({"setup_seconds": round(time.perf_counter() - began, 1), "subscribers": args.subscribers}))
        run(config, args.runs)


def run(config: Path, runs: int) -> None:
    from sqlalchemy import text

    from aaa.config import load
    from aaa.context import build_context
    from aaa.services import subscribers

    ctx = build_context(load(config))
    with ctx.transaction() as uow:  # 10.x.y.z and 02:00:00:xx:xx:xx from the id, as an ISP's would be spread
        uow.session.execute(text(
            "UPDATE subscribers SET static_ipv4 = '10.' || (id / 65536) || '.' || ((id / 256) % 256) || '.' || (id % 256),"
            " mac_binding = printf('02:00:00:%02X:%02X:%02X', (id / 65536) % 256, (id / 256) % 256, id % 256)"
            " WHERE login LIKE 'user%'"
        ))
    for kind, needle in SEARCHES.items():
        times = []
        found = 0
        for _ in range(runs):
            t0 = time.perf_counter()
            found = len(subscribers.list_subscribers(ctx, search=needle, limit=50))
            times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({
            "search": kind, "text": needle, "rows": found, "runs": runs,
            "p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
        }))


if __name__ == "__main__":
    main()
