"""AAA gateway core: RADIUS server, storage, service layer, CLI and plugin system.

Plugins write ``from aaa import hookimpl`` and decorate their hook implementations.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "aaa"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
__version__ = "0.1.0"
