"""Every plugin hook the project offers, grouped by phase (pluggy project name ``aaa``).

Plugins implement them with ``from aaa import hookimpl``. Each hook is documented here and in
``docs/plugin_hooks.md`` (a test keeps the two in step).

Stage hooks are named after FreeRADIUS v3's processing sections and return a :class:`aaa.stages.Result`
(or its string value, or None for ``noop``). They run in the order ``[radius] stages`` gives and a
``reject``, ``fail``, ``handled``, ``invalid`` or ``disallow`` ends the stage. Any hook may return a
plain value, a Twisted Deferred or a coroutine; the host waits for it.

Event hooks are called after the transaction that caused the event has committed, with the
``context`` (settings, database, vault, plugins) as their first argument; what they return is
ignored and an exception in one plugin is logged without stopping the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aaa import hookspec

if TYPE_CHECKING:
    from collections.abc import Callable

    from aaa.context import Context
    from aaa.stages import Request


# --- Life cycle -------------------------------------------------------------------------------


@hookspec
def aaa_startup(context: Context, reactor: Any) -> None:
    """Called once when ``aaa serve`` has loaded its configuration and cache, before it listens.

    :param context: the running :class:`aaa.context.Context` (settings, database, vault, plugins).
    :param reactor: the Twisted reactor, for plugins that start services or timers of their own.
    """


@hookspec
def aaa_shutdown(context: Context) -> None:
    """Called once when ``aaa serve`` stops (SIGTERM or SIGINT), after the listeners have closed."""


@hookspec
def aaa_demo_loaded(context: Context, actor: str) -> str | None:
    """Called by ``aaa demo`` right after it loaded the core demo data (NAS, plans, customers,
    subscribers) into an empty database, so a plugin adds demo data of its own.

    :param context: the :class:`aaa.context.Context` of the command.
    :param actor: who is loading the demo, for the audit log.
    :returns: one line saying what was added (printed by ``aaa demo``), or None.
    """


# --- Registration -----------------------------------------------------------------------------


@hookspec
def aaa_register_commands(cli: Any) -> None:
    """Add commands to the ``aaa`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)`` or use ``@cli.command()``.
    """


@hookspec
def aaa_register_jobs(register: Callable[..., None]) -> None:
    """Register periodic jobs run by ``aaa serve``.

    :param register: ``register(name, interval_seconds, function)``; ``function(context)`` runs on a
        thread, under a database lease so one node of a cluster runs each job at a time.
    """


@hookspec
def aaa_register_outbox_handlers(register: Callable[..., None]) -> None:
    """Register the code that carries out outbox rows of a kind (a message, an OLT command, ...).

    :param register: ``register(kind, handler)``; ``handler(context, row)`` runs on a thread, returns a
        result dict on success and raises to have the row retried with back-off.
    """


@hookspec
def aaa_register_tui_screens(register: Callable[..., None]) -> None:
    """Add screens to ``aaa tui``.

    :param register: ``register(name, title, screen_factory)``; the factory returns a Textual Screen.
    """


@hookspec
def aaa_register_templates(register: Callable[..., None]) -> None:
    """Add folders of jinja2 templates (invoices, messages); later folders override earlier ones.

    :param register: ``register(path)`` with a folder of templates.
    """


# --- RADIUS stages (FreeRADIUS v3 section names) ---------------------------------------------------


@hookspec
def aaa_authorize(request: Request) -> Any:
    """Decide who the user is and what they may get, before the password is checked.

    Called for every Access-Request. ``request.subscriber`` is the cached subscriber (or None),
    ``request.reply`` the reply attributes being built; set ``request.reply_message`` with a reason
    when rejecting. Return a :class:`aaa.stages.Result` (None means ``noop``).
    """


@hookspec
def aaa_authenticate(request: Request) -> Any:
    """Check the credentials (PAP, CHAP, MS-CHAP, MAC). Return ``ok``, ``reject`` or ``noop``.

    The built-in authenticator implements it for the methods RouterOS uses; a plugin may
    authenticate against another store and return ``ok`` or ``reject``.
    """


@hookspec
def aaa_post_auth(request: Request) -> Any:
    """Called after the decision; ``request.accepted`` says which. May add reply attributes, or
    return ``reject`` to turn an accept into a reject."""


@hookspec
def aaa_preacct(request: Request) -> Any:
    """Called for every Accounting-Request before it is recorded; ``reject`` drops the record."""


@hookspec
def aaa_accounting(request: Request) -> Any:
    """Called for every Accounting-Request after its record is durable (it will reach ``sessions``)."""


# --- Enforcement ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def aaa_session_update(subscriber: Any, plan: Any, cause: str) -> dict[str, Any] | None:
    """Decide how an open session learns about a change to its subscriber (status, plan, unlock).

    Called by the outbox worker for each ``radius.reauthorize`` row. ``subscriber`` and ``plan`` are
    the current cache entries; ``cause`` is ``plan``, ``status:<new status>`` or ``trust-unlock``.
    Return ``{"action": "coa", "attributes": [(name, value), ...]}`` to change the session in place
    (RouterOS accepts Mikrotik-Rate-Limit, Mikrotik-Group, Session-Timeout, Idle-Timeout, ...), or
    ``{"action": "disconnect"}`` to end it so the router logs the subscriber in again. The first
    plugin that returns a value decides; the built-in policy always does.
    """


# --- Events (after commit) ------------------------------------------------------------------------


@hookspec
def aaa_subscriber_state_changed(
    context: Context, subscriber: dict[str, Any], old_status: str, new_status: str, actor: str, reason: str | None
) -> None:
    """A subscriber's status changed (active, notified, reduced, suspended, disabled, terminated).

    :param subscriber: the subscriber as ``aaa subscriber show --json`` gives it.
    :param actor: who or what caused it (``admin:NAME``, ``job:NAME``, ``payment``, ``chatbot``).
    """


@hookspec
def aaa_subscriber_plan_changed(context: Context, subscriber: dict[str, Any], old_plan: str, new_plan: str, actor: str) -> None:
    """A subscriber moved to another plan."""


@hookspec
def aaa_session_started(context: Context, session: dict[str, Any]) -> None:
    """An Accounting-Start was recorded in ``sessions`` (the session as ``aaa session list --json`` shows it)."""


@hookspec
def aaa_session_stopped(context: Context, session: dict[str, Any]) -> None:
    """A session was closed: by Accounting-Stop, a NAS reboot, or as stale."""


@hookspec
def aaa_invoice_issued(context: Context, invoice: dict[str, Any]) -> None:
    """An invoice was issued (monthly run, pro-rata first invoice, or a second copy)."""


@hookspec
def aaa_invoice_paid(context: Context, invoice: dict[str, Any], payment: dict[str, Any]) -> None:
    """A payment was recorded (once per payment, after commit). ``invoice["status"]`` says whether it is now
    settled and ``invoice["overdue_invoices_left"]`` counts the subscriber's other overdue invoices; the
    policy reactivates a notified, reduced or suspended subscriber when the invoice is paid and none is left."""


@hookspec
def aaa_invoice_overdue(context: Context, invoice: dict[str, Any]) -> None:
    """The daily check found an invoice past its due date and unpaid; drives the suspension life cycle."""


@hookspec
def aaa_onu_discovered(context: Context, olt: str, pon_port: str, serial: str) -> None:
    """An OLT reported an ONU that is not authorised yet (authorising it is always an admin's act)."""
