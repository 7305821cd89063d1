"""``aaa tui``: the admin terminal UI. The App only wires things: login, places (modes), key
bindings, command palette entries and screens that plugins register."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from aaa.context import Context
from aaa.services.admins import AdminSession
from tui import i18n
from tui.i18n import t
from tui.navigation import NAVIGATION, PLACES
from tui.screens.base import describe_error
from tui.screens.help import HelpScreen
from tui.screens.login import LoginScreen


class AdminApp(App[None]):
    CSS_PATH = "styles.tcss"
    MODES = {p.mode: p.factory for p in NAVIGATION}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(p.key, f"goto('{p.mode}')", p.title_key, show=False) for p in NAVIGATION),
        Binding("f1,question_mark", "help", "action.help"),
        Binding("ctrl+q", "quit", "action.quit"),
    ]

    def __init__(self, ctx: Context, *, language: str | None = None) -> None:
        self.ui_language = i18n.set_language(language or ctx.settings.ui.language)
        super().__init__()
        self.ctx = ctx
        self.admin: AdminSession | None = None
        self.plugin_screens: dict[str, tuple[str, Callable[[], Screen[None]]]] = {}

    def on_mount(self) -> None:
        self.title = t("app.title")
        self.load_plugin_screens()
        self.push_screen(LoginScreen(), self.logged_in)

    def logged_in(self, session: AdminSession | None) -> None:
        if session is None:
            return
        self.admin = session
        self.sub_title = f"{session.username} ({session.role})"
        self.notify(t("login.welcome", username=session.username, role=session.role))
        self.switch_mode("dashboard")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "goto":
            place = PLACES.get(str(parameters[0])) if parameters else None
            return self.admin is not None and place is not None and self.admin.can(place.permission)
        return True

    def action_goto(self, mode: str) -> None:
        if self.check_action("goto", (mode,)):
            self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # --- plugins -------------------------------------------------------------------------------------

    def register_screen(self, name: str, title: str, screen_factory: Callable[[], Screen[None]]) -> None:
        """The ``register`` callable given to ``aaa_register_tui_screens``."""
        if not callable(screen_factory):
            raise TypeError(f"screen factory for {name!r} is not callable")
        self.plugin_screens[str(name)] = (str(title), screen_factory)

    def load_plugin_screens(self) -> None:
        try:
            self.ctx.pm.hook.aaa_register_tui_screens(register=self.register_screen)
        except Exception as exc:  # a broken plugin must not take the TUI down
            self.notify(describe_error(exc), severity="error")

    def open_plugin_screen(self, name: str) -> None:
        if self.admin is None:
            return
        try:
            self.push_screen(self.plugin_screens[name][1]())
        except Exception as exc:
            self.notify(describe_error(exc), severity="error")

    # --- command palette -----------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        if self.admin is not None:
            for place in NAVIGATION:
                if self.admin.can(place.permission):
                    title = t(place.title_key)
                    yield SystemCommand(title, t("screen.open", name=title), partial(self.action_goto, place.mode))
            for name, (title, _factory) in sorted(self.plugin_screens.items()):
                yield SystemCommand(title, t("screen.open", name=title), partial(self.open_plugin_screen, name))
            yield from self.screen_actions(screen)
        yield SystemCommand(t("screen.help"), t("help.intro"), self.action_help)
        yield from super().get_system_commands(screen)

    def screen_actions(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The current screen's own key bindings (those its role allows) as palette entries."""
        for active in screen.active_bindings.values():
            binding = active.binding
            if active.node is screen and binding.description and binding.action != "back":
                key = self.get_key_display(binding)
                yield SystemCommand(binding.description, key, partial(self.run_action, binding.action, screen))


def run(ctx: Context) -> None:
    """Run the TUI on the terminal until the admin quits."""
    AdminApp(ctx).run()
