"""Shared fixtures: a migrated database on SQLite always, and on PostgreSQL when
``AAA_TEST_DATABASE_URL`` is set (CI sets it), plus a Context built on it.

Each test gets an empty schema: SQLite from a copy of a database migrated once per run, PostgreSQL
by truncating every table of a schema migrated once per run.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from aaa.config import parse
from aaa.context import Context, build_context
from aaa.db import load_models, migrate
from aaa.db.engine import make_engine
from aaa.db.models import Base

load_models()

PG_URL = os.environ.get("AAA_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="AAA_TEST_DATABASE_URL not set"))]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "aaa.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    engine.dispose()
    return PG_URL


def _reset_pg(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO change_counter (id, value, epoch) VALUES (1, 0, 0)"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly emptied, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "aaa.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_migrated")
    _reset_pg(url)
    return url


def make_settings(root: Path, url: str, **sections: dict[str, Any]) -> Any:
    data: dict[str, Any] = {"database": {"url": url}, "security": {"key_file": str(root / "aaa.key")}}
    for name, table in sections.items():
        data.setdefault(name, {}).update(table)
    return parse(data, source="test", root=root)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Any:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def ctx(settings: Any) -> Iterator[Context]:
    context = build_context(settings)
    yield context
    context.close()


@pytest.fixture
def actor() -> str:
    return "admin:test"


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its production cost takes most of a second on a busy machine; admin tests use a cheap one."""
    from argon2 import PasswordHasher

    from aaa.services import admins

    monkeypatch.setattr(admins, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def no_dashboard_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI dashboard's background Status-Server probes stay off in tests: the demo NAS's CoA port
    (127.0.0.1:3799) may belong to another process on this machine. Tests of the probes turn them
    back on with a NAS of their own."""
    dashboard = sys.modules.get("tui.screens.dashboard")
    if dashboard is not None:
        monkeypatch.setattr(dashboard, "PROBE_INTERVAL", None)
