"""The login screen: username, password and (when the admin has one) a TOTP code."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from aaa.errors import AAAError
from aaa.services import admins
from aaa.services.admins import AdminSession
from tui.i18n import t
from tui.screens.base import Translated, describe_error


class LoginScreen(Translated, Screen[AdminSession]):
    """Dismisses with the :class:`AdminSession` once the service layer accepts the credentials."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="login-box"):
            yield Label(t("login.title"), classes="box-title")
            yield Input(placeholder=t("login.username"), id="username")
            yield Input(placeholder=t("login.password"), password=True, id="password")
            yield Input(placeholder=t("login.totp"), id="totp", max_length=8)
            yield Button(t("login.submit"), id="submit", variant="primary")
            yield Static("", id="login-message")
        yield Footer()

    def on_mount(self) -> None:
        self.title = t("login.title")
        self.query_one("#username", Input).focus()

    @on(Input.Submitted, "#username")
    def next_field(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    @on(Input.Submitted, "#totp")
    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        code = self.query_one("#totp", Input).value.strip() or None
        if not username or not password:
            return
        self.query_one("#submit", Button).disabled = True
        self.query_one("#login-message", Static).update(t("login.checking"))
        self.check(username, password, code)

    @work(thread=True, exit_on_error=False, exclusive=True, group="login")
    def check(self, username: str, password: str, code: str | None) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        try:
            session = admins.authenticate(ctx, username, password, code)
        except admins.TotpRequired as exc:
            self.app.call_from_thread(self.refused, str(exc), "#totp")
        except AAAError as exc:
            self.app.call_from_thread(self.refused, str(exc), "#password")
        except Exception as exc:  # the database is down, ...: a message, not a traceback
            self.app.call_from_thread(self.refused, describe_error(exc), "#password")
        else:
            self.app.call_from_thread(self.dismiss, session)

    def refused(self, message: str, focus: str) -> None:
        """Show why; keep the password when only the TOTP code is missing."""
        self.query_one("#login-message", Static).update(message)
        self.query_one("#submit", Button).disabled = False
        if focus != "#totp":
            self.query_one("#password", Input).value = ""
        self.query_one(focus, Input).focus()
        self.notify(message, severity="error")
