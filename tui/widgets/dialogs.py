"""Dialogs: confirm an action, choose one of several options, type a secret."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from tui.i18n import t
from tui.screens.base import AdminModal


class ConfirmDialog(AdminModal):
    """Yes or no to one action; dismisses with True or False."""

    BINDINGS = [Binding("escape", "cancel", "action.cancel"), Binding("y", "confirm", "action.confirm", show=False)]

    def __init__(self, question: str) -> None:
        super().__init__(classes="dialog")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button(t("action.confirm"), id="confirm", variant="warning")
                yield Button(t("action.cancel"), id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ChooseDialog(AdminModal):
    """Pick one of ``options``; dismisses with the chosen value or None."""

    BINDINGS = [Binding("escape", "cancel", "action.cancel")]

    def __init__(self, prompt: str, options: list[str]) -> None:
        super().__init__(classes="dialog")
        self.prompt = prompt
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.prompt)
            yield OptionList(*[Option(o, id=o) for o in self.options], id="choices")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SecretDialog(AdminModal):
    """Type a secret (a password), hidden; dismisses with the text or None."""

    BINDINGS = [Binding("escape", "cancel", "action.cancel")]

    def __init__(self, prompt: str) -> None:
        super().__init__(classes="dialog")
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.prompt)
            yield Input(password=True, id="secret")
            with Horizontal(classes="buttons"):
                yield Button(t("action.confirm"), id="confirm", variant="warning")
                yield Button(t("action.cancel"), id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def submit(self) -> None:
        value = self.query_one("#secret", Input).value
        if value:
            self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
