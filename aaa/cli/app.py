"""What a CLI command needs, built lazily: settings, engine, context, plugin manager, actor."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy import Engine

from aaa.config import Settings, load
from aaa.context import Context, build_context
from aaa.plugins import PluginManager, make_plugin_manager

F = TypeVar("F", bound=Callable[..., Any])


class App:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._context: Context | None = None
        self._pm: PluginManager | None = None
        self._engine: Engine | None = None

    @classmethod
    def from_argv(cls, argv: list[str]) -> App:
        path = None
        for i, arg in enumerate(argv):
            if arg == "--config" and i + 1 < len(argv):
                path = argv[i + 1]
            elif arg.startswith("--config="):
                path = arg.split("=", 1)[1]
        return cls(path or os.environ.get("AAA_CONFIG"))

    @property
    def actor(self) -> str:
        try:
            return f"cli:{getpass.getuser()}"
        except Exception:
            return "cli"

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load(self.config_path)
        return self._settings

    def plugin_manager(self) -> PluginManager:
        if self._pm is None:
            self._pm = make_plugin_manager(self.settings().plugins.disabled)
        return self._pm

    def engine(self) -> Engine:
        if self._context is not None:
            return self._context.engine
        if self._engine is None:
            from aaa.db.engine import make_engine

            s = self.settings()
            self._engine = make_engine(s.database.url, root=s.root, echo=s.database.echo)
        return self._engine

    def context(self) -> Context:
        if self._context is None:
            self._context = build_context(self.settings(), pm=self.plugin_manager())
        return self._context

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(App)
