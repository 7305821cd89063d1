"""The subscriber cache and the vault under it: what start-up loads is what the database holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

import psycopg
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from aaa.cache import _SUB_COLUMNS, Cache, SubscriberEntry
from aaa.context import Context
from aaa.db.models import Customer, Subscriber
from aaa.services import plans, subscribers
from aaa.vault import Vault, VaultError

UNLOCK = dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.UTC)


def test_columns_follow_the_entry_fields() -> None:
    """The load builds entries positionally from these columns: the orders must agree."""
    fields = [f.name for f in dataclasses.fields(SubscriberEntry) if f.name != "nt_keys"]
    assert [column.key.removesuffix("_enc") for column in _SUB_COLUMNS] == fields


def test_load_refresh_and_read_fresh_carry_every_field(ctx: Context, actor: str) -> None:
    plans.add_plan(ctx, name="Fibra 300M", down="300M", up="150M", actor=actor)
    with Session(ctx.engine) as session, session.begin():
        customer = Customer(name="Maria Souza")
        session.add(customer)
        session.flush()
        customer_id = customer.id
    subscribers.add_subscriber(ctx, login="maria", password="Senha-2024", plan="Fibra 300M", ip="100.64.0.9",
                               mac="aa:bb:cc:00:11:22", ipv6_prefix="2001:db8:100::/56", simultaneous_use=2,
                               customer_id=customer_id, actor=actor)  # fmt: skip
    subscribers.add_subscriber(ctx, login="sem-senha", plan="Fibra 300M", actor=actor)
    with ctx.engine.begin() as connection:
        connection.execute(
            update(Subscriber).where(Subscriber.login == "maria").values(trust_unlock_until=UNLOCK)
        )
    cache = Cache(ctx.engine, ctx.vault)
    cache.load()
    entry = cache.subscriber("maria")
    assert entry is not None
    expected = dict(login="maria", password="Senha-2024", status="active", static_ipv4="100.64.0.9",
                    delegated_ipv6_prefix="2001:db8:100::/56", mac_binding="AA:BB:CC:00:11:22", simultaneous_use=2,
                    customer_id=customer_id, trust_unlock_until=UNLOCK, nt_keys=None)  # fmt: skip
    assert {k: getattr(entry, k) for k in expected} == expected
    assert cache.plan(entry.plan_id).name == "Fibra 300M"  # type: ignore[union-attr]
    assert cache.by_mac["AA:BB:CC:00:11:22"] is entry
    assert cache.subscriber("sem-senha").password is None  # type: ignore[union-attr]

    subscribers.update_subscriber(ctx, "maria", password="Outra-2025", simultaneous_use=3, actor=actor)
    assert cache.refresh()
    changed = cache.subscriber("maria")
    assert (changed.password, changed.simultaneous_use, changed.trust_unlock_until) == (
        "Outra-2025",
        3,
        UNLOCK,
    )  # type: ignore[union-attr]
    fresh = cache.read_fresh("maria")
    assert fresh is not None and fresh[0] == changed and fresh[1].name == "Fibra 300M"  # type: ignore[union-attr]
    assert cache.read_fresh("ninguem") is None


def test_vault_round_trip_and_refusals() -> None:
    vault = Vault(bytes(range(64)))
    token = vault.encrypt("senha secreta çã")
    assert token.startswith("v1:") and "senha" not in token
    assert vault.decrypt(token) == "senha secreta çã"
    other = Vault(bytes(range(1, 65)))
    for bad in (token[:-4] + "AAAA", token + "!", token.replace("v1:", "v1: "), "v1:", "v1:%%%%"):
        with pytest.raises(VaultError, match="cannot be decrypted with this key file") as info:
            vault.decrypt(bad)
        assert "senha" not in str(info.value) and bad not in str(info.value)
    with pytest.raises(VaultError, match="cannot be decrypted"):
        other.decrypt(token)
    with pytest.raises(VaultError, match="not an encrypted token"):
        vault.decrypt("plain text")


def test_the_change_counter_is_read_over_one_kept_connection(ctx: Context, actor: str) -> None:
    """The cache's every-second question takes no session, no ORM and no pool checkout; a
    connection the database dropped is replaced at the next read, and changes are still seen."""
    from aaa.db import changes

    cache = Cache(ctx.engine, ctx.vault)
    cache.load()
    assert not cache.refresh() and not cache.refresh()
    watch = cache._watch
    kept = watch._connection
    assert kept is not None and watch.read() == (cache.seq, cache.epoch) and watch._connection is kept
    kept.dbapi_connection.close()  # the database went away under it
    with pytest.raises((sqlite3.Error, psycopg.Error)):
        watch.read()
    assert watch._connection is None
    plans.add_plan(ctx, name="Fibra 500M", down="500M", up="250M", actor=actor)
    assert cache.refresh() and cache.plans and watch._connection is not None
    cache.close()
    assert watch._connection is None
    with ctx.engine.begin() as connection:
        connection.execute(changes.ChangeCounter.__table__.delete())
    with pytest.raises(LookupError, match="change counter"):
        changes.CounterWatch(ctx.engine).read()
