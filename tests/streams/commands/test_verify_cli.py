"""`bcl verify pdf|scan` end to end over an archive and PKI laid out as the platform keeps them; the
error cases run the real `bcl` entry point in a subprocess, so that what a person sees on stdout and
stderr (one line, never a traceback: pyHanko's are logged) is what is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from certgen.keys import KeyPool
from streams.cli import cli
from streams.commands.exit_status import EXIT_NOT_VERIFIED
from tests.certgen.issued_world import SECRET, IssuedWorld, build_issued_world, degraded_scan_png, hide_sheet_code

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def key_pool(tmp_path_factory: pytest.TempPathFactory) -> KeyPool:
    pool = KeyPool(tmp_path_factory.mktemp("key-pool"), 4)
    pool.load()
    return pool


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> IssuedWorld:
    return build_issued_world(tmp_path_factory.mktemp("data"), key_pool)


@pytest.fixture(scope="module")
def other_world(tmp_path_factory: pytest.TempPathFactory) -> IssuedWorld:
    """Another installation: its own PKI (other keys) and archive (what verifying the demo's paper
    against ./var is)."""
    pool = KeyPool(tmp_path_factory.mktemp("other-key-pool"), 4)
    pool.load()
    return build_issued_world(tmp_path_factory.mktemp("other"), pool)


@pytest.fixture(scope="module")
def scan(world: IssuedWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan") / "scan.png"
    path.write_bytes(degraded_scan_png(world.household.pdf, path.parent))
    return path


def bcl(world: IssuedWorld, *args: str | Path):
    env = {"BCL_SCRAMBLE_KEY_SECRET": SECRET}
    return CliRunner().invoke(cli, ["--data-dir", str(world.data_dir), "verify", *map(str, args)], env=env)


def run_bcl(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCL_SCRAMBLE_KEY_SECRET": SECRET, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "streams.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_verify_pdf_valid_and_tampered(world: IssuedWorld, tmp_path: Path) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(world.household.pdf)
    result = bcl(world, "pdf", good)
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output and "cert-household" in result.output
    tampered = bytearray(world.household.pdf)
    tampered[len(tampered) // 2] ^= 0x01
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(bytes(tampered))
    result = bcl(world, "pdf", bad)
    assert result.exit_code == EXIT_NOT_VERIFIED
    assert "INVALID" in result.output and "not in the issuance record" in result.output


def test_verify_scan_writes_the_restore_and_the_comparison(world: IssuedWorld, scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "restored.png"
    # The issuer and the date exactly as the front prints them.
    result = bcl(world, "scan", scan, "--issuer", "横浜市長", "--issued-on", "令和8年11月21日", "--out", out)
    assert result.exit_code == 0, result.output
    assert "MATCH" in result.output and "cert-household" in result.output
    restored, compare = Image.open(out), Image.open(tmp_path / "out" / "restored-compare.png")
    assert restored.size == (827, 1169)
    assert compare.size == (2 * 827 + 16, 1169)
    audit = [json.loads(line) for line in (world.data_dir / "audit" / "personal-data-access.jsonl").read_text()
             .splitlines()]
    assert audit[-1]["action"] == "verify-scan" and audit[-1]["records"] == 1  # the sheet the code on the back names
    assert audit[-1]["matched_certificate"] == "cert-household"

    result = bcl(world, "scan", scan, "--certificate-id", "cert-wife", "--out", tmp_path / "wife.png")
    assert result.exit_code == EXIT_NOT_VERIFIED and "NO MATCH" in result.output
    assert not (tmp_path / "wife-compare.png").exists()


def test_verify_scan_of_a_sheet_with_its_code_needs_nothing_typed(world: IssuedWorld, scan: Path,
                                                                   tmp_path: Path) -> None:
    result = bcl(world, "scan", scan, "--out", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert "score" in result.output and "over 1 issued sheet(s)" in result.output and "cert-household" in result.output


def test_verify_scan_accepts_the_code_and_a_western_date(world: IssuedWorld, scan: Path, tmp_path: Path) -> None:
    result = bcl(world, "scan", scan, "--municipality", "141003", "--issued-on", "2026-11-21",
                 "--out", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert "cert-household" in result.output


def test_a_data_dir_with_nothing_to_check_against_says_so(world: IssuedWorld, scan: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "jyuminhyo.pdf"
    pdf.write_bytes(world.household.pdf)
    for args in (("verify", "pdf", pdf),
                 ("verify", "scan", scan, "--issuer", "横浜市長", "--issued-on", "令和8年11月21日", "--out", "r.png")):
        line = one_line_error(run_bcl(tmp_path, *args))  # the default data dir ./var holds nothing
        assert "nothing to verify against" in line and f"{tmp_path / 'var'}" in line
        assert "seal root" in line and "issuance record" in line
        assert "--data-dir var/demo" in line
        assert "INVALID" not in line and "forged" not in line
    assert not (tmp_path / "var").exists()  # and nothing was created there


def test_a_certificate_of_another_installation_is_invalid_in_one_line_each(other_world: IssuedWorld,
                                                                            world: IssuedWorld,
                                                                            tmp_path: Path) -> None:
    pdf = tmp_path / "jyuminhyo.pdf"
    pdf.write_bytes(other_world.household.pdf)
    result = run_bcl(tmp_path, "--data-dir", world.data_dir, "verify", "pdf", pdf)
    assert result.returncode == EXIT_NOT_VERIFIED
    # pyHanko logs the chain failure with its traceback; the reason is the finding's, on one line.
    assert result.stderr == "" and "Traceback" not in result.stdout
    assert "does not chain to the municipal seal root (unknown issuer, or the seal certificate is expired): " \
           in result.stdout
    assert "--data-dir var/demo" in result.stdout
    assert result.stdout.splitlines()[-1] == "INVALID"  # the verdict stays the last line (the demo prints it)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("pdf", "{notes}"), "error: “{notes}” is not a PDF (it looks like a text file)"),
        (("pdf", "{empty}"), "error: “{empty}” is empty (0 bytes)"),
        (("pdf", "{scan}"), "is not a PDF (it is a PNG image"),
        (("scan", "{notes}", "--issuer", "横浜市長", "--issued-on", "令和8年11月21日", "--out", "r.png"),
         "error: “{notes}” is neither a PDF nor an image: it looks like a text file"),
        (("scan", "{pdf}", "--issuer", "横浜市長", "--issued-on", "令和8年11月21日", "--out", "r.png"),
         "is a PDF, not a scan"),
        (("scan", "{scan}", "--issuer", "横浜市長", "--issued-on", "令和8年13月21日", "--out", "r.png"),
         "error: --issued-on: «令和8年13月21日» is not a date of the calendar"),
        (("scan", "{scan}", "--issuer", "府中市長", "--issued-on", "令和8年11月21日", "--out", "r.png"),
         "error: --issuer: «府中市長» is the name of 2 municipalities"),
        (("scan", "{scan}", "--issuer", "横浜市長", "--out", "r.png"), "error: --issued-on: missing"),
        (("scan", "{nocode}", "--out", "r.png"),
         "error: --issuer and --issued-on, or --certificate-id: the code at the bottom of the back cannot be read"),
    ],
)
def test_bad_input_is_one_line_naming_what_was_wrong(world: IssuedWorld, scan: Path, tmp_path: Path,
                                                     args: tuple[str, ...], expected: str) -> None:
    files = {"notes": tmp_path / "notes.txt", "empty": tmp_path / "empty.pdf", "pdf": tmp_path / "c.pdf",
             "scan": scan, "nocode": tmp_path / "nocode.png"}
    files["notes"].write_text("買い物メモ: 牛乳、卵\n")
    hide_sheet_code(Image.open(scan).convert("RGB")).save(files["nocode"])
    files["empty"].write_bytes(b"")
    files["pdf"].write_bytes(world.household.pdf)
    names = {key: str(path) for key, path in files.items()}
    line = one_line_error(run_bcl(tmp_path, "--data-dir", world.data_dir, "verify",
                                  *(a.format(**names) for a in args)))
    assert expected.format(**names) in line
