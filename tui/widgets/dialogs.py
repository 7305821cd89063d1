"""Dialogs: confirm an action, choose one of several options, type a secret, fill a small form."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, OptionList
from textual.widgets.option_list import Option

from aaa.errors import ValidationError
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


def whole_number(text: str | bool, what: str) -> int | None:
    """A form's text as an int (None when empty); anything else is a one-line ValidationError."""
    text = str(text).strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationError(f"invalid {what} {text!r}: a whole number")
    return int(text)


@dataclass(frozen=True)
class Field:
    """One line of a :class:`FormDialog`: a text box (hidden with ``password``) or a checkbox (``flag``)."""

    name: str
    label: str
    value: str | bool = ""
    password: bool = False
    flag: bool = False
    placeholder: str = ""


class FormDialog(AdminModal):
    """A few labelled fields; dismisses with ``{name: text or bool}`` or None. Text is stripped;
    the service layer validates it (its one-line error becomes a notification)."""

    BINDINGS = [Binding("escape", "cancel", "action.cancel")]

    def __init__(self, title: str, fields: list[Field]) -> None:
        super().__init__(classes="dialog")
        self.form_title = title
        self.fields = fields

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="form"):
            yield Label(self.form_title, classes="box-title")
            for f in self.fields:
                if f.flag:
                    yield Checkbox(f.label, bool(f.value), id=f"field-{f.name}")
                else:
                    yield Label(f.label)
                    yield Input(str(f.value), placeholder=f.placeholder, password=f.password, id=f"field-{f.name}")
            with Horizontal(classes="buttons"):
                yield Button(t("action.save"), id="confirm", variant="warning")
                yield Button(t("action.cancel"), id="cancel")

    def values(self) -> dict[str, str | bool]:
        out: dict[str, str | bool] = {}
        for f in self.fields:
            if f.flag:
                out[f.name] = self.query_one(f"#field-{f.name}", Checkbox).value
            else:
                out[f.name] = self.query_one(f"#field-{f.name}", Input).value.strip()
        return out

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def submit(self) -> None:
        self.dismiss(self.values())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
