"""The application context: settings, database, vault and plugins, shared by CLI, server and TUI.

:meth:`Context.transaction` opens one unit of work. Events that plugins hear about
(``aaa_subscriber_state_changed`` and friends) are queued on it and fired only after the commit,
so a plugin never reacts to a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from twisted.logger import Logger

from aaa.config import Settings
from aaa.db import changes
from aaa.db.engine import make_engine, make_sessionmaker
from aaa.plugins import PluginManager, make_plugin_manager
from aaa.vault import Vault, load_or_create_key

log = Logger()


@dataclass
class UnitOfWork:
    """A database session in a transaction plus the events to fire once it commits."""

    session: Session
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)  # rows queued in this transaction

    def emit(self, hook: str, **kwargs: Any) -> None:
        self.events.append((hook, kwargs))


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    pm: PluginManager

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        with self.sessions() as session:
            uow = UnitOfWork(session)
            with session.begin():
                yield uow
        self.fire(uow.events)

    def fire(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Call each event's implementations (each gets ``context`` too); a failing plugin is logged."""
        for hook, kwargs in events:
            caller = getattr(self.pm.hook, hook)
            available = {**kwargs, "context": self}
            for impl in caller.get_hookimpls():
                try:
                    impl.function(**{k: available[k] for k in impl.argnames if k in available})
                except Exception:
                    log.failure("plugin {plugin} failed handling {hook}", plugin=impl.plugin_name, hook=hook)

    def plugin_config(self, name: str) -> dict[str, Any]:
        return self.settings.plugins.for_plugin(name)

    def close(self) -> None:
        self.engine.dispose()


def build_context(settings: Settings, *, pm: PluginManager | None = None) -> Context:
    """Everything a command needs, from settings: engine, sessions, key file and plugins."""
    engine = make_engine(
        settings.database.url, root=settings.root, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    changes.install()
    vault = Vault(load_or_create_key(settings.path(settings.security.key_file)))
    if pm is None:
        pm = make_plugin_manager(settings.plugins.disabled)
    return Context(settings=settings, engine=engine, sessions=make_sessionmaker(engine), vault=vault, pm=pm)
