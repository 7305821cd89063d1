"""An example aaa plugin, complete and tested (tests/test_plugins.py installs and loads it).

- ``aaa_startup`` reads its settings from ``[plugins.example]`` in aaa.toml.
- ``aaa_authorize`` rejects logins from blocked MAC addresses, with a reason.
- ``aaa_post_auth`` puts subscribers of VIP plans into a MikroTik address list.
- ``aaa_accounting`` counts accounting requests by status type.
- ``aaa_subscriber_state_changed`` remembers the last status changes.
- ``aaa_register_commands`` adds ``aaa example-status``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from aaa import hookimpl
from aaa.stages import Request, Result

settings: dict[str, Any] = {"blocked_macs": [], "vip_plans": [], "vip_address_list": "vip"}
accounting_seen: Counter[str] = Counter()
state_changes: list[tuple[str, str, str]] = []


@hookimpl
def aaa_startup(context: Any, reactor: Any) -> None:
    settings.update(context.plugin_config("example"))


@hookimpl
def aaa_authorize(request: Request) -> Result | None:
    mac = (request.packet.get("Calling-Station-Id") or "").upper().replace("-", ":")
    if mac in {m.upper() for m in settings["blocked_macs"]}:
        return request.reject("device blocked by the example plugin")
    return None  # noop: let the other plugins decide


@hookimpl
def aaa_post_auth(request: Request) -> Result | None:
    if request.accepted and request.plan is not None and request.plan.name in settings["vip_plans"]:
        request.add_reply("Mikrotik-Address-List", settings["vip_address_list"])
        return Result.UPDATED
    return None


@hookimpl
def aaa_accounting(request: Request) -> None:
    accounting_seen[request.packet.value_name("Acct-Status-Type") or "other"] += 1


@hookimpl
def aaa_subscriber_state_changed(subscriber: dict[str, Any], old_status: str, new_status: str) -> None:
    state_changes.append((subscriber["login"], old_status, new_status))


@hookimpl
def aaa_register_commands(cli: click.Group) -> None:
    @cli.command("example-status")
    def example_status() -> None:
        """Say that the example plugin is loaded."""
        click.echo("example plugin loaded")
