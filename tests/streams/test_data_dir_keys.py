"""No default secrets (issue 8 item 4): each data dir makes its own random key on first use, keeps it 0600
in a 0700 folder and reuses it; a published or weak key is refused with one clear line, from the
environment, a config file or a key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from streams.cli import EXIT_ERROR
from streams.platform import Platform
from streams.settings import SettingsError, load_settings
from tests.platforms import make_platform
from tests.streams.commands.test_cli_errors import assert_one_error, bcl

OLD_DEFAULT = "bcl-development-scramble-key-secret"  # what earlier versions shipped


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_each_data_dir_makes_its_own_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    first, second = make_platform(tmp_path / "a"), make_platform(tmp_path / "b")
    key_a, key_b = first.scramble_key("302066"), second.scramble_key("302066")
    assert key_a != key_b, "two data dirs must not share a key"
    secret_file = first.settings.scramble_key_file
    assert mode(secret_file) == 0o600 and mode(secret_file.parent) == 0o700
    secret = secret_file.read_text().strip()
    assert len(secret) == 64 and int(secret, 16) and secret != OLD_DEFAULT
    # Reused: a later command on the same data dir (the verifier after the worker) gets the same key.
    assert make_platform(tmp_path / "a").scramble_key("302066") == key_a
    assert Platform(load_settings({"data_dir": tmp_path / "a"}, environ={})).scramble_key_secret == secret


def test_a_configured_key_is_used_instead_of_the_data_dirs(tmp_path: Path) -> None:
    configured = "a9f1c7e2-the-deployments-own-key-4d8b0e6a"
    platform = make_platform(tmp_path, scramble_key_secret=configured)
    assert platform.scramble_key_secret == configured
    assert not platform.settings.scramble_key_file.exists()


@pytest.mark.parametrize(("value", "why"), [
    (OLD_DEFAULT, "published default"),
    ("bcl-development-pseudonym-key", "published default"),
    ("short-but-random-9f3", "fewer than 32"),
    ("ab" * 20, "distinct characters"),
])
def test_a_weak_key_is_refused_wherever_it_comes_from(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      value: str, why: str) -> None:
    with pytest.raises(SettingsError, match=why) as refused:
        load_settings(environ={"BCL_SCRAMBLE_KEY_SECRET": value})
    assert value not in str(refused.value)
    config = tmp_path / "bcl.toml"
    config.write_text(f'scramble_key_secret = "{value}"\n')
    with pytest.raises(SettingsError, match=why):
        load_settings(config_file=config, environ={})
    line = assert_one_error(*bcl(capsys, tmp_path, "--config", str(config), "backup", "status"), EXIT_ERROR,
                            "scramble_key_secret", why)
    assert value not in line


def test_a_weak_key_file_is_refused(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    platform.settings.scramble_key_file.parent.mkdir(parents=True)
    platform.settings.scramble_key_file.write_text(OLD_DEFAULT + "\n")
    with pytest.raises(Exception, match="holds a key the platform refuses"):
        platform.scramble_key("302066")
