"""``bench.instructions``: the in-process driver it runs under valgrind handles every request it is
given (the counts themselves need valgrind and minutes, so they are not taken here)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_instructions", ROOT / "bench" / "instructions.py")
assert _spec is not None and _spec.loader is not None
instructions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(instructions)


def _drive(config: Path, pool: Path, method: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", str(ROOT / "bench" / "instructions.py"), "--drive", str(config), str(pool), method, "2"],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_the_driver_handles_every_request_of_each_kind(tmp_path: Path) -> None:
    config = instructions._template(tmp_path, users=20)
    for method in ("pap", "mschapv2", "interim"):
        done = _drive(config, instructions._pool(tmp_path, method, 20, users=20), method)
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_the_driver_refuses_a_run_where_requests_were_rejected(tmp_path: Path) -> None:
    """A pool for subscribers the database lacks: the count would measure rejects, so it fails."""
    config = instructions._template(tmp_path, users=20)
    done = _drive(config, instructions._pool(tmp_path, "pap", 30, users=30), "pap")
    assert done.returncode != 0
    assert "pap: 60 of 60 requests handled, all accepted: False" in done.stderr


@pytest.mark.slow
def test_mschap_steps_times_each_step(tmp_path: Path) -> None:
    """``bench.mschap_steps`` on the same in-process server: a figure for every step, PAP last."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "bench.mschap_steps", "--users", "20", "--passes", "1", "--work", str(tmp_path)],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    for step in ("ChallengeResponse (3 DES)", "ChallengeHash (SHA-1)", "MPPE key attributes"):
        assert any(step in line for line in lines), done.stdout
    assert "PAP; MS-CHAPv2 with every step above replaced costs" in lines[-1]
