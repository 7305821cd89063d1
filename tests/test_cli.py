"""The ``aaa`` command end to end: db upgrade, nas/plan/subscriber round trip, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from aaa.db.engine import make_engine
from aaa.db.models import Subscriber


@pytest.fixture
def aaa(tmp_path: Path, database_url: str):
    """Run ``aaa`` with a config in tmp_path pointing at the test database."""
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "aaa.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[security]\nkey_file = "{tmp_path}/aaa.key"\n')
    env = {**os.environ, "AAA_CONFIG": str(config)}
    env.pop("AAA_DATABASE_URL", None)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "aaa.cli", *args], env=env, capture_output=True, text=True, timeout=120)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    run("db", "upgrade")
    return run


def subscriber_count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(Subscriber)).scalar_one()
    engine.dispose()
    return n


def test_nas_plan_subscriber_round_trip(aaa):
    aaa("nas", "add", "r1", "--ip", "192.0.2.1", "--secret", "s3cret")
    aaa("plan", "add", "100M", "--down", "100M", "--up", "50M", "--price", "99.90")
    aaa("subscriber", "add", "ana", "--password", "pw", "--plan", "100M", "--ip", "100.64.0.2")
    rows = json.loads(aaa("subscriber", "list", "--json").stdout)
    assert [(r["login"], r["plan"], r["static_ipv4"], r["status"]) for r in rows] == [("ana", "100M", "100.64.0.2", "active")]
    assert json.loads(aaa("nas", "list", "--json").stdout)[0]["address"] == "192.0.2.1"
    assert json.loads(aaa("plan", "list", "--json").stdout)[0]["subscribers"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("subscriber", "add", "ana", "--password", "x", "--plan", "100M"), "subscriber 'ana' already exists"),
        (("subscriber", "add", "bob", "--password", "x", "--plan", "nope"), "plan 'nope' not found"),
        (("subscriber", "add", "bob", "--password", "x", "--plan", "100M", "--ip", "1.2.3"), "invalid static IP"),
        (("nas", "add", "r2", "--ip", "10.0.0.0/40", "--secret", "s"), "invalid NAS address"),
        (("plan", "add", "p", "--down", "100X", "--up", "1M"), "invalid download rate '100X'"),
        (("customer", "add", "Bob", "--document", "111.444.777-00"), "invalid CPF"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_changes_nothing(aaa, database_url, args, message):
    aaa("plan", "add", "100M", "--down", "100M", "--up", "50M")
    aaa("subscriber", "add", "ana", "--password", "pw", "--plan", "100M")
    result = aaa(*args, ok=False)
    assert result.returncode != 0
    assert message in result.stderr and result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert subscriber_count(database_url) == 1


def test_demo_loads_once_and_lists_its_subscribers(aaa):
    aaa("demo", "--subscribers", "5")
    assert "nothing to do" in aaa("demo", "--if-empty").stdout
    logins = {r["login"] for r in json.loads(aaa("subscriber", "list", "--json").stdout)}
    assert {"maria", "joao", "user00001", "user00005"} <= logins


def test_demo_issues_invoices_that_a_second_copy_can_be_made_of(aaa):
    """The README's walk-through issues a second copy right after ``make run``: the demo has invoices."""
    assert "2 demo invoices issued" in aaa("demo", "--subscribers", "0").stdout
    invoices = json.loads(aaa("invoice", "list", "--json").stdout)
    assert sorted(i["login"] for i in invoices) == ["joao", "maria"]
    assert {i["status"] for i in invoices} == {"open"}
    copy = json.loads(aaa("invoice", "second-copy", str(invoices[0]["id"]), "--due-date", invoices[0]["due_date"], "--json").stdout)
    assert copy["parent_id"] == invoices[0]["id"] and copy["kind"] == "second_copy"
    assert aaa("demo", "--if-empty").stdout.count("invoices") == 0


def test_deleting_a_subscriber_with_invoices_is_refused_in_one_line(aaa):
    aaa("demo", "--subscribers", "1")
    result = aaa("subscriber", "delete", "maria", ok=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert result.stderr.strip() == "aaa: error: subscriber 'maria' has 1 invoice(s) on record and cannot be deleted; suspend it instead"
    assert json.loads(aaa("subscriber", "show", "maria", "--json").stdout)["login"] == "maria"
    assert aaa("subscriber", "delete", "user00001").stdout.strip() == "subscriber user00001 deleted"


def test_csv_import_is_all_or_nothing_with_line_numbers(aaa, tmp_path, database_url):
    aaa("plan", "add", "100M", "--down", "100M", "--up", "50M")
    bad = tmp_path / "bad.csv"
    bad.write_text("login,password,plan,ip\nana,pw,100M,\nbob,pw,nope,\nana,pw,100M,\ncid,pw,100M,300.0.0.1\n")
    result = aaa("subscriber", "import", str(bad), ok=False)
    assert result.returncode != 0
    for fragment in ("line 3: unknown plan 'nope'", "line 4: duplicate login 'ana'", "line 5: invalid static IP"):
        assert fragment in result.stderr
    assert subscriber_count(database_url) == 0


def test_csv_import_loads_subscribers_with_customers(aaa, tmp_path):
    aaa("plan", "add", "100M", "--down", "100M", "--up", "50M")
    good = tmp_path / "good.csv"
    rows = ["login,password,plan,mac,customer_name,document,phone"]
    rows += [f"user{i},pw{i},100M,,,," for i in range(200)]
    rows.append("maria,pw,100M,aa:bb:cc:dd:ee:01,Maria da Silva,529.982.247-25,(11) 98765-4321")
    good.write_text("\n".join(rows) + "\n")
    summary = json.loads(aaa("subscriber", "import", str(good), "--json").stdout)
    assert summary["imported"] == 201 and summary["customers"] == 1
    maria = json.loads(aaa("subscriber", "show", "maria", "--json").stdout)
    assert maria["customer_name"] == "Maria da Silva" and maria["mac_binding"] == "AA:BB:CC:DD:EE:01"


def test_db_check_reports_models_and_migrations_agree(aaa):
    assert "agree" in aaa("db", "check").stdout


def test_outbox_list_and_retry_errors(aaa):
    assert json.loads(aaa("outbox", "list", "--json").stdout) == []
    result = aaa("outbox", "retry", "42", ok=False)
    assert result.returncode != 0 and "outbox row 42 not found" in result.stderr


def test_import_of_100k_rows_is_batched(tmp_path, aaa, database_url):
    """Correctness at scale (the timing is in docs/performance.md, not asserted here)."""
    aaa("plan", "add", "100M", "--down", "100M", "--up", "50M")
    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write("login,password,plan\n")
        for i in range(20_000):
            fh.write(f"u{i:06d},p{i},100M\n")
    started = time.monotonic()
    summary = json.loads(aaa("subscriber", "import", str(big), "--json").stdout)
    assert summary["imported"] == 20_000 and subscriber_count(database_url) == 20_000
    assert time.monotonic() - started < 600  # a bound against hangs, not a performance assertion


def test_nas_check_prints_activity_and_the_status_server_outcome(aaa):
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    aaa("nas", "add", "lo", "--ip", "127.0.0.1", "--secret", "s3cret", "--coa-port", str(port))
    text = aaa("nas", "check", "lo").stdout
    assert "last_auth_at        never" in text and f"on CoA port {port}" in text and "refused" in text
    assert "s3cret" not in text
    assert json.loads(aaa("nas", "check", "lo", "--json").stdout)["probe"]["outcome"] == "unreachable"
    assert aaa("nas", "check", "ghost", ok=False).stderr.strip() == "aaa: error: NAS 'ghost' not found"


def test_a_second_trust_unlock_in_the_cycle_is_refused_with_one_line_naming_why(aaa):
    aaa("plan", "add", "100M", "--down", "100M", "--up", "50M")
    aaa("subscriber", "add", "ana", "--password", "pw", "--plan", "100M")
    aaa("subscriber", "suspend", "ana")
    assert json.loads(aaa("subscriber", "trust-unlock", "ana", "--json").stdout)["trust_unlock_until"]
    again = aaa("subscriber", "trust-unlock", "ana", ok=False)
    assert again.returncode != 0 and again.stderr.strip().count("\n") == 0 and "Traceback" not in again.stderr
    assert "subscriber 'ana' already used the trust unlock of cycle" in again.stderr
    shown = json.loads(aaa("subscriber", "show", "ana", "--json").stdout)
    assert [h["kind"] for h in shown["history"]] == ["trust-unlock", "status"]
