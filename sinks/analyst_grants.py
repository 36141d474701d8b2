"""Which municipalities each analyst may query (docs/domain.md §8.1): a TOML file in the data dir
(Settings.analyst_grants_file), kept by `bcl analysts grant` / `revoke`, or by hand:

    [analysts]
    sato = ["302066", "045811"]

An analyst who is not in the file, or has no municipality, is refused: there is no unscoped access."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from domain.errors import BclError
from domain.municipalities import municipality
from infra.private_files import write_private_file

# Analyst names become TOML keys and audit-log entries: short, plain, no spaces.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class AnalystGrantError(BclError):
    """An analyst name or grant is not usable, or the grants file cannot be read."""


class AnalystNotGrantedError(AnalystGrantError):
    """The analyst may query no municipality."""


def check_analyst_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AnalystGrantError(f"analyst name {name!r} is not valid (letters, digits, _ and -; at most 64)")
    return name


def read_grants(path: Path) -> dict[str, tuple[str, ...]]:
    """Every analyst's granted municipality codes (empty if there is no grants file yet)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnalystGrantError(f"cannot read the analyst grants {path}: {exc}") from exc
    analysts = data.get("analysts", {})
    if not isinstance(analysts, dict) or set(data) - {"analysts"}:
        raise AnalystGrantError(f"the analyst grants {path} must hold one [analysts] table and nothing else")
    grants = {}
    for name, codes in analysts.items():
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise AnalystGrantError(f"the analyst grants {path}: {name} must be a list of municipality codes")
        grants[check_analyst_name(name)] = tuple(sorted({municipality(c).code for c in codes}))
    return grants


def granted_municipalities(path: Path, analyst: str) -> tuple[str, ...]:
    """The codes `analyst` may query; refused if none."""
    codes = read_grants(path).get(check_analyst_name(analyst), ())
    if not codes:
        raise AnalystNotGrantedError(f"analyst {analyst} is granted no municipality: an operator grants them with "
                                     f"`bcl analysts grant {analyst} --municipality CODE` ({path})")
    return codes


def change_grants(path: Path, analyst: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> tuple[str, ...]:
    """Grant `add` and withdraw `remove` for an analyst; returns what the analyst holds afterwards."""
    grants = read_grants(path)
    held = set(grants.get(check_analyst_name(analyst), ()))
    held |= {municipality(code).code for code in add}
    held -= set(remove)
    grants[analyst] = tuple(sorted(held))
    lines = ["# Municipalities each analyst may query with `bcl query --analyst NAME` (docs/domain.md §8.1).",
             "[analysts]"]
    lines += [f"{name} = {json.dumps(list(codes))}" for name, codes in sorted(grants.items()) if codes]
    write_private_file(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return grants[analyst]
