"""The product stands alone: the built wheel, installed into a fresh virtual environment, gives a `bcl`
that works from any directory, with its reference data and schemas inside the package.

The wheel is built from this checkout and installed without its dependencies (they come from the test's
own environment through a .pth line, so the test needs no network and no second copy of pyarrow). The
commands then run in an empty working directory, so nothing can be found through the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KITAYAMA = "304271"  # 北山村, the smallest municipality of the demo


def _run(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel; returns its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # Built from a copy of the checkout's files: setuptools builds in the source tree (build/), whose leftovers
    # from an earlier build could otherwise end up in the wheel.
    source = root / "source"
    files = subprocess.check_output(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                    cwd=REPO, text=True).split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", root / "dist",
         source, cwd=root, env=env)
    (wheel,) = (root / "dist").glob("bcl-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root, env=env)
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps", wheel,
         cwd=root, env=env)
    # The dependencies: this environment's site-packages, appended to the new venv's path. A .pth line adds a
    # directory without processing the .pth files inside it, so this checkout's editable install stays out.
    site = Path(subprocess.check_output([venv / "bin" / "python", "-c", "import sysconfig; "
                                         "print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "zz_bcl_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_installed_package_runs_a_small_full_load_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    located = _run(installed / "python", "-c", "import domain, streams; print(streams.__file__, domain.__file__)",
                   cwd=work, env=env).stdout
    assert str(REPO) not in located and str(installed.parent) in located

    cluster = subprocess.Popen([installed / "bcl", "cluster", "up", "--brokers", "1"], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        bootstrap = work / "var" / "cluster" / "bootstrap.servers"
        deadline = time.monotonic() + 60
        while not bootstrap.exists():
            assert cluster.poll() is None, cluster.communicate()[1]
            assert time.monotonic() < deadline, "the cluster did not write its bootstrap file"
            time.sleep(0.2)
        _run(installed / "bcl", "adapter", "full-load", "--municipality", KITAYAMA, cwd=work, env=env)
        _run(installed / "bcl", "backup", "materialise", "--until-caught-up", cwd=work, env=env)
        status = json.loads(_run(installed / "bcl", "backup", "status", "--json", cwd=work, env=env).stdout)
    finally:
        cluster.terminate()
        cluster.communicate(timeout=30)
    (row,) = [r for r in status if r["municipality_code"] == KITAYAMA]
    assert row["residents"] > 300 and row["missing"] == 0  # 北山村 has 421 inhabitants
    assert (work / "var" / "snapshots").is_dir()  # the data dir is ./var of the working directory
