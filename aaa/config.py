"""Configuration: the TOML file read into typed settings, with environment overrides.

Precedence: ``--config PATH`` > ``$AAA_CONFIG`` > ``etc/aaa.toml``; ``$AAA_DATABASE_URL`` overrides
``[database] url``. Every key is declared in a dataclass below; an unknown key, a value of the wrong
type or a missing file raises :class:`ConfigError` with one line that names the key and the file.
Relative paths in the file are resolved against the project root (the folder that holds ``etc/``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aaa.errors import ConfigError

DEFAULT_CONFIG = Path("etc/aaa.toml")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/aaa.sqlite3"
    pool_size: int = 10
    echo: bool = False


@dataclass(frozen=True)
class RadiusSettings:
    bind: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    dictionaries: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    duplicate_cache_seconds: float = 5.0
    cache_refresh_seconds: float = 1.0
    auth_log_in_process: bool = True
    auth_log_spool_dir: str = "var/auth-log"
    auth_log_spool_mb: int = 256


@dataclass(frozen=True)
class AccountingSettings:
    journal_dir: str = "var/journal"
    commit_interval_ms: int = 0
    batch_size: int = 20000
    dead_letter_file: str = "var/accounting-dead-letter.jsonl"
    apply_in_process: bool = True
    apply_nice: int = 19
    missed_interims_before_stale: int = 3
    default_interim_interval: int = 300


@dataclass(frozen=True)
class OutboxSettings:
    poll_interval_seconds: float = 0.5
    max_attempts: int = 5
    backoff_base_seconds: float = 2.0
    lease_seconds: float = 30.0
    concurrency_per_nas: int = 32
    coa_timeout_seconds: float = 2.0
    coa_retries: int = 2


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 9812


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    file: str = ""
    format: str = "text"


@dataclass(frozen=True)
class SecuritySettings:
    key_file: str = "var/aaa.key"


@dataclass(frozen=True)
class UISettings:
    language: str = "pt-BR"


@dataclass(frozen=True)
class PluginSettings:
    """``[plugins]``: ``disabled`` names plugins not to load; every sub-table is one plugin's settings."""

    disabled: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_plugin(self, name: str) -> dict[str, Any]:
        return dict(self.settings.get(name, {}))


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    radius: RadiusSettings = field(default_factory=RadiusSettings)
    accounting: AccountingSettings = field(default_factory=AccountingSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    ui: UISettings = field(default_factory=UISettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    root: Path = Path(".")
    source: str = "<defaults>"

    def path(self, value: str) -> Path:
        """A path from the configuration, resolved against the project root."""
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    def replace(self, **sections: Any) -> Settings:
        return dataclasses.replace(self, **sections)


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    return True


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _build(cls: type, table: dict[str, Any], section: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{section}.{key}"
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{where}'")
        annotation = hints[key]
        if not _type_ok(value, annotation):
            raise ConfigError(
                f"{source}: '{where}' must be {_type_name(annotation)}, not {type(value).__name__}"
            )
        values[key] = float(value) if annotation is float else value
    return cls(**values)


def _build_plugins(table: dict[str, Any], source: str) -> PluginSettings:
    disabled = table.get("disabled", [])
    if not _type_ok(disabled, list[str]):
        raise ConfigError(f"{source}: 'plugins.disabled' must be a list of plugin names")
    settings: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if key == "disabled":
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: unknown key 'plugins.{key}' (plugin settings are tables: [plugins.{key}])")
        settings[key] = value
    return PluginSettings(disabled=list(disabled), settings=settings)


_SECTIONS: dict[str, type] = {
    "database": DatabaseSettings,
    "radius": RadiusSettings,
    "accounting": AccountingSettings,
    "outbox": OutboxSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
    "security": SecuritySettings,
    "ui": UISettings,
}


def parse(data: dict[str, Any], *, source: str, root: Path) -> Settings:
    """Typed settings from an already-parsed TOML document."""
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name == "plugins":
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: 'plugins' must be a table")
            sections["plugins"] = _build_plugins(table, source)
            continue
        if name not in _SECTIONS:
            raise ConfigError(f"{source}: unknown key '{name}'")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: '{name}' must be a table")
        sections[name] = _build(_SECTIONS[name], table, name, source)
    return Settings(root=root, source=source, **sections)


def find_root(start: Path) -> Path:
    """The project root for a config file: the parent of its ``etc/`` folder, else its own folder."""
    start = start.resolve()
    folder = start.parent
    return folder.parent if folder.name == "etc" else folder


def load(path: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None) -> Settings:
    """Read the configuration the way the ``aaa`` command does."""
    env = os.environ if environ is None else environ
    chosen = Path(path) if path else Path(env["AAA_CONFIG"]) if env.get("AAA_CONFIG") else DEFAULT_CONFIG
    if not chosen.is_file():
        raise ConfigError(f"{chosen}: configuration file not found")
    try:
        with chosen.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: not valid TOML ({exc})") from None
    settings = parse(data, source=str(chosen), root=find_root(chosen))
    url = env.get("AAA_DATABASE_URL")
    if url:
        settings = settings.replace(database=dataclasses.replace(settings.database, url=url))
    return settings
