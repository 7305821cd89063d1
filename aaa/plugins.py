"""The plugin manager: hook specs, the built-in plugins, then the ``aaa.plugins`` entry points.

Built-in plugins (inside ``aaa``) load first, then every entry point in the ``aaa.plugins`` group,
which is how the bundled plugins (``policy``, ``plugins.*``) and third-party packages arrive. Names
in ``[plugins] disabled`` are skipped. A hook implementation whose name is not a hook spec (a typo)
fails start-up with a clear error.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

import pluggy

from aaa import PROJECT_NAME, hookspecs
from aaa.errors import PluginError

ENTRY_POINT_GROUP = "aaa.plugins"
BUILTIN_PLUGINS = ("aaa.radius.authenticate",)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution each entry-point plugin came from."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.distributions: dict[str, str] = {}


def make_plugin_manager(disabled: list[str] | tuple[str, ...] = (), extra: tuple[Any, ...] = ()) -> PluginManager:
    """A plugin manager with every enabled plugin registered and validated.

    :param disabled: plugin names (entry point names, or built-in module names) not to load.
    :param extra: plugin objects to register as well (tests, embedding).
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    skip = set(disabled)
    for module_name in BUILTIN_PLUGINS:
        if module_name not in skip:
            pm.register(importlib.import_module(module_name), name=module_name)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in skip or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party package must say which one it is
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            pm.distributions[ep.name] = f"{ep.dist.name} {ep.dist.version}"
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None
    return pm


def describe(pm: PluginManager) -> list[dict[str, Any]]:
    """Each loaded plugin with the hooks it implements (for ``aaa plugins``)."""
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        dist = pm.distributions.get(name)
        module = getattr(plugin, "__name__", type(plugin).__module__)
        rows.append({"name": name, "module": module, "distribution": dist, "hooks": hooks})
    return rows
