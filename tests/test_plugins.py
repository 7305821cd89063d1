"""Plugin system: specs documented, misspellings caught, order honoured, an installed plugin loads."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, succeed

from aaa import hookimpl, hookspecs
from aaa.errors import PluginError
from aaa.plugins import describe, make_plugin_manager
from aaa.stages import Request, Result, StageRunner

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(n for n in dir(hookspecs) if n.startswith("aaa_"))


def test_every_hook_has_a_section_with_its_signature_in_plugin_hooks_md():
    text = (ROOT / "docs" / "plugin_hooks.md").read_text()
    documented = set(re.findall(r"^### (aaa_\w+)$", text, re.M))
    assert set(SPECS) - documented == set(), "hooks missing from docs/plugin_hooks.md"
    assert documented - set(SPECS) == set(), "docs/plugin_hooks.md documents hooks that do not exist"
    for name in SPECS:
        signature = name + str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
        assert signature in text, f"docs/plugin_hooks.md does not show the signature {signature}"


def test_misspelled_hook_implementation_fails_start_up():
    class Typo:
        @hookimpl
        def aaa_autorize(self, request):
            return None

    with pytest.raises(PluginError, match="aaa_autorize"):
        make_plugin_manager(extra=(Typo(),))


def test_disabled_plugin_is_not_loaded():
    names = {row["name"] for row in describe(make_plugin_manager(disabled=["policy"]))}
    assert "policy" not in names and "aaa.radius.authenticate" in names


class FakePacket:
    def get(self, name, default=None):
        return default

    def value_name(self, name):
        return None


def make_request() -> Request:
    return Request(FakePacket(), nas=None, login="ana")


class Recorder:
    def __init__(self, name: str, result, calls: list[str]):
        self.name, self.result, self.calls = name, result, calls

    @hookimpl
    def aaa_authorize(self, request):
        self.calls.append(self.name)
        return self.result


def runner_for(order, *plugins):
    pm = make_plugin_manager(disabled=["policy", "aaa.radius.authenticate", "invoicing"])
    for plugin in plugins:
        pm.register(plugin, name=plugin.name)
    return StageRunner(pm, order)


def test_stage_runs_in_configured_order_and_stops_on_reject():
    calls: list[str] = []
    runner = runner_for(["first", "second"], Recorder("second", None, calls), Recorder("first", "reject", calls))
    assert runner.run("aaa_authorize", make_request()) is Result.REJECT
    assert calls == ["first"]


def test_stage_result_is_the_best_of_non_ending_results():
    calls: list[str] = []
    runner = runner_for(["a", "b", "c"], Recorder("a", "noop", calls), Recorder("b", Result.UPDATED, calls), Recorder("c", "ok", calls))
    assert runner.run("aaa_authorize", make_request()) is Result.UPDATED
    assert calls == ["a", "b", "c"]


def test_stage_treats_an_unknown_result_as_fail_and_stops():
    calls: list[str] = []
    runner = runner_for(["a", "b", "c"], Recorder("a", Result.OK, calls), Recorder("b", "maybe", calls), Recorder("c", "ok", calls))
    assert runner.run("aaa_authorize", make_request()) is Result.FAIL
    assert calls == ["a", "b"]


def test_stage_keeps_the_best_result_when_later_ones_are_none_or_lower():
    calls: list[str] = []
    runner = runner_for(["a", "b", "c"], Recorder("a", "updated", calls), Recorder("b", None, calls), Recorder("c", Result.NOTFOUND, calls))
    assert runner.run("aaa_authorize", make_request()) is Result.UPDATED


def test_result_hashes_like_the_string_it_equals():
    assert {"ok": 1}[Result.OK] == 1 and Result("reject") in {"reject"}


def test_stage_waits_for_deferred_and_coroutine_results():
    calls: list[str] = []

    class Later(Recorder):
        @hookimpl
        def aaa_authorize(self, request):
            calls.append(self.name)
            return succeed("ok")

    class Coroutine(Recorder):
        @hookimpl
        async def aaa_authorize(self, request):
            calls.append(self.name)
            return "handled"

    runner = runner_for(["later", "co", "never"], Later("later", None, calls), Coroutine("co", None, calls), Recorder("never", "ok", calls))
    outcome = runner.run("aaa_authorize", make_request())
    assert isinstance(outcome, Deferred)
    results: list[Result] = []
    outcome.addCallback(results.append)
    assert results == [Result.HANDLED] and calls == ["later", "co"]


@pytest.fixture
def installed_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example plugin installed the way pip installs it: module + dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "docs" / "example_plugin" / "aaa_example_plugin.py", site)
    info = site / "aaa_example_plugin-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aaa-example-plugin\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[aaa.plugins]\nexample = aaa_example_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_installed_plugin_is_listed_by_aaa_plugins(installed_example: Path, tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "aaa.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path}/a.sqlite3"\n[security]\nkey_file = "{tmp_path}/k"\n')
    env = {**os.environ, "PYTHONPATH": f"{installed_example}{os.pathsep}{ROOT}", "AAA_CONFIG": str(tmp_path / "etc" / "aaa.toml")}
    aaa = [sys.executable, "-m", "aaa.cli"]
    out = subprocess.run([*aaa, "plugins", "--json"], env=env, capture_output=True, text=True, check=True).stdout
    example = next(row for row in json.loads(out) if row["name"] == "example")
    assert example["distribution"] == "aaa-example-plugin 1.0.0"
    assert {"aaa_authorize", "aaa_post_auth", "aaa_accounting", "aaa_register_commands"} <= set(example["hooks"])
    said = subprocess.run([*aaa, "example-status"], env=env, capture_output=True, text=True, check=True).stdout
    assert said.strip() == "example plugin loaded"


def test_installed_plugin_hooks_run_in_the_pipeline(installed_example: Path):
    import aaa_example_plugin as example

    example.settings["blocked_macs"] = ["AA:BB:CC:DD:EE:FF"]
    pm = make_plugin_manager(disabled=["invoicing"])
    runner = StageRunner(pm, ["example"])

    class Blocked(FakePacket):
        def get(self, name, default=None):
            return "aa-bb-cc-dd-ee-ff" if name == "Calling-Station-Id" else default

    request = Request(Blocked(), nas=None, login="ana")
    assert runner.run("aaa_authorize", request) is Result.REJECT
    assert request.reply_message == "device blocked by the example plugin"
