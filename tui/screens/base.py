"""What every screen of the TUI shares: header and footer, translated key labels, worker errors as
notifications, and easy access to the context and the logged-in admin.

Database work runs in thread workers (``@work(thread=True, exit_on_error=False)``) that hand results
back with ``app.call_from_thread``; a worker that raises becomes a notification, never a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Header
from textual.worker import Worker, WorkerState

from aaa.context import Context
from aaa.errors import AAAError, ValidationError
from aaa.services.admins import AdminSession
from tui.i18n import t

if TYPE_CHECKING:
    from tui.app import AdminApp


def describe_error(error: BaseException | None) -> str:
    """One line for an operator: our errors as they are, database errors by their cause."""
    if isinstance(error, AAAError):
        return str(error)
    if isinstance(error, DBAPIError):
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        return f"database: {reason}"
    return t("error.internal", error=f"{type(error).__name__}: {error}")


class Translated:
    """Footer and help show binding descriptions through :func:`t` (descriptions are i18n keys)."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings: dict[str, ActiveBinding] = super().active_bindings  # type: ignore[misc]
        return {
            key: active._replace(binding=dataclasses.replace(active.binding, description=t(active.binding.description)))
            for key, active in bindings.items()
        }


class WorkerErrors:
    """A failed worker on this node becomes an error notification."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(describe_error(event.worker.error), severity="error", timeout=8)  # type: ignore[attr-defined]


class AdminScreen(Translated, WorkerErrors, Screen[None]):
    """A full screen of the app: header, the body the subclass composes, footer."""

    TITLE_KEY = ""
    BINDINGS = [Binding("escape", "back", "action.back", show=False)]

    @property
    def admin_app(self) -> AdminApp:
        return self.app  # type: ignore[return-value]

    @property
    def ctx(self) -> Context:
        return self.admin_app.ctx

    @property
    def admin(self) -> AdminSession:
        session = self.admin_app.admin
        assert session is not None, "screens after login only"
        return session

    def can(self, action: str) -> bool:
        return self.admin_app.admin is not None and self.admin.can(action)

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def on_mount(self) -> None:
        # Textual calls on_mount of every class in the MRO (subclasses first): fill only what is unset.
        if self.TITLE_KEY and not self.title:
            self.title = t(self.TITLE_KEY)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def confirm(self, question: str, then: Callable[[], object]) -> None:
        """Ask ``question`` in a ConfirmDialog; call ``then()`` only on Confirm."""
        from tui.widgets.dialogs import ConfirmDialog  # dialogs build on this module

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmDialog(question), answered)

    def ask(self, title: str, fields: list[Any], then: Callable[[dict[str, Any]], object]) -> None:
        """A FormDialog of ``fields`` whose values go to ``then(values)``; a ValidationError raised
        there (a badly typed date or amount) becomes an error notification."""
        from tui.widgets.dialogs import FormDialog  # dialogs build on this module

        def filled(values: dict[str, Any] | None) -> None:
            if values is None:
                return
            try:
                then(values)
            except ValidationError as exc:
                self.notify(str(exc), severity="error")

        self.app.push_screen(FormDialog(title, fields), filled)

    def call_ui(self, callback: Any, *args: Any) -> None:
        """From a worker thread: run ``callback(*args)`` on the UI thread."""
        self.app.call_from_thread(callback, *args)


class AdminModal(Translated, WorkerErrors, ModalScreen[Any]):
    """A dialog over the current screen."""
