"""``aaa bench`` against a real ``aaa serve`` subprocess: the JSON report has every field, no timing asserted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from radius_harness import free_port

from aaa.cli import cli, main

AAA = str(Path(sys.executable).parent / "aaa")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """``aaa serve`` on free ports with 20 demo subscribers (user00001/pw00001 ...)."""
    auth, acct = free_port(), free_port()
    config = tmp_path / "etc" / "aaa.toml"
    config.parent.mkdir()
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/aaa.sqlite3"\n[radius]\nauth_port = {auth}\nacct_port = {acct}\n'
        f'[accounting]\njournal_dir = "{tmp_path}/journal"\n[metrics]\nport = {free_port(socket.SOCK_STREAM)}\n'
        f'[security]\nkey_file = "{tmp_path}/aaa.key"\n'
    )
    env = dict(os.environ, AAA_CONFIG=str(config))
    subprocess.run([AAA, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([AAA, "demo", "--subscribers", "20"], env=env, check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([AAA, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            result = _bench(auth, acct, "--count", "1", "--timeout", "0.3")
            if result["accept"] == 1:
                break
        else:
            pytest.fail("aaa serve did not answer within 30 s")
        yield auth, acct
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _bench(auth: int, acct: int, *args: str) -> dict:
    runner = CliRunner()
    result = runner.invoke(cli, ["bench", "--json", "--quiet", "--auth-port", str(auth), "--acct-port", str(acct),
                                 "--last", "20", *args], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def setup_module() -> None:
    from aaa.cli import _register_builtin_commands

    _register_builtin_commands()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pap", "chap", "mschapv2"])
def test_auth_report_has_every_field_and_all_accepts(server: tuple[int, int], method: str) -> None:
    """A one-second run with each method: every request answered with Access-Accept, the fields present."""
    summary = _bench(*server, "--method", method, "--duration", "1", "--window", "4", "--processes", "2")
    for key in ("requests_per_s", "sent", "answered", "accept", "reject", "timeout", "bad_reply", "elapsed_s",
                "precompute_s", "started_at", "ended_at"):  # fmt: skip
        assert key in summary
    assert set(summary["latency_ms"]) >= {"p50", "p99", "p999", "max"}
    assert summary["answered"] > 0 and summary["accept"] == summary["answered"]
    assert summary["reject"] == summary["timeout"] == summary["bad_reply"] == 0


@pytest.mark.slow
def test_accounting_cycle_is_acknowledged(server: tuple[int, int]) -> None:
    """Start, Interim-Update and Stop for 20 sessions: 60 Accounting-Responses."""
    summary = _bench(*server, "--request", "acct", "--acct-status", "cycle", "--count", "60", "--window", "8")
    assert summary["accounting_response"] == 60 and summary["timeout"] == 0


def test_refuses_a_target_outside_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    """Only 127.0.0.0/8 and ::1 may be loaded."""
    with pytest.raises(SystemExit):
        main(["bench", "--host", "192.0.2.1", "--count", "1"])
    assert "not a loopback address" in capsys.readouterr().err


def test_refuses_an_unbounded_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --count or --duration nothing is sent."""
    with pytest.raises(SystemExit):
        main(["bench"])
    assert "--count or --duration" in capsys.readouterr().err
