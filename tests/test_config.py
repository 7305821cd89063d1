"""Configuration: the example file loads; bad files are one line naming the key and the file, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aaa.config import load
from aaa.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "etc").mkdir(exist_ok=True)
    path = tmp_path / "etc" / "aaa.toml"
    path.write_text(text)
    return path


def test_example_configuration_loads_with_its_documented_defaults():
    settings = load(ROOT / "etc" / "aaa.toml", environ={})
    assert settings.database.url == "sqlite:///var/aaa.sqlite3"
    assert (settings.radius.bind, settings.radius.auth_port, settings.radius.acct_port) == ("127.0.0.1", 1812, 1813)
    assert settings.root == ROOT and settings.path(settings.security.key_file) == ROOT / "var" / "aaa.key"


def test_database_url_from_the_environment_overrides_the_file():
    settings = load(ROOT / "etc" / "aaa.toml", environ={"AAA_DATABASE_URL": "postgresql://db/aaa"})
    assert settings.database.url == "postgresql://db/aaa"


def test_config_path_from_the_environment(tmp_path: Path):
    path = write(tmp_path, "[radius]\nauth_port = 11812\n")
    assert load(None, environ={"AAA_CONFIG": str(path)}).radius.auth_port == 11812


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[radius]\nauth_prot = 1\n", "unknown key 'radius.auth_prot'"),
        ("[radius]\nauth_port = \"1812\"\n", "'radius.auth_port' must be int, not str"),
        ("[nonsense]\n", "unknown key 'nonsense'"),
        ("[plugins]\ndisabled = \"x\"\n", "'plugins.disabled' must be a list"),
        ("[database\n", "not valid TOML"),
        ("[metrics]\nenabled = 1\n", "'metrics.enabled' must be bool"),
    ],
)
def test_bad_configuration_names_the_key_and_the_file(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_plugin_tables_are_kept_for_their_plugin(tmp_path: Path):
    path = write(tmp_path, '[plugins]\ndisabled = ["whatsapp"]\n[plugins.policy]\nsuspended_treatment = "blocked"\n')
    settings = load(path, environ={})
    assert settings.plugins.disabled == ["whatsapp"]
    assert settings.plugins.for_plugin("policy") == {"suspended_treatment": "blocked"}


def test_cli_exits_2_with_one_line_on_a_bad_configuration(tmp_path: Path):
    path = write(tmp_path, "[radius]\nbind = 5\n")
    result = subprocess.run([sys.executable, "-m", "aaa.cli", "--config", str(path), "nas", "list"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "'radius.bind' must be str" in result.stderr


def test_cli_exits_2_when_the_file_is_missing(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "aaa.cli", "--config", str(tmp_path / "nope.toml"), "nas", "list"], capture_output=True, text=True)
    assert result.returncode == 2 and "configuration file not found" in result.stderr
