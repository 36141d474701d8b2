"""`bcl verify pdf|scan` end to end over an archive and PKI laid out as the platform keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from certgen.keys import KeyPool
from streams.cli import cli
from tests.certgen.issued_world import SECRET, IssuedWorld, build_issued_world, degraded_scan_png


@pytest.fixture(scope="module")
def key_pool(tmp_path_factory: pytest.TempPathFactory) -> KeyPool:
    pool = KeyPool(tmp_path_factory.mktemp("key-pool"), 4)
    pool.load()
    return pool


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> IssuedWorld:
    return build_issued_world(tmp_path_factory.mktemp("data"), key_pool)


def bcl(world: IssuedWorld, *args: str | Path):
    env = {"BCL_SCRAMBLE_KEY_SECRET": SECRET}
    return CliRunner().invoke(cli, ["--data-dir", str(world.data_dir), "verify", *map(str, args)], env=env)


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
    assert result.exit_code == 2
    assert "INVALID" in result.output and "not in the issuance record" in result.output


def test_verify_scan_writes_the_restore_and_the_comparison(world: IssuedWorld, tmp_path: Path) -> None:
    scan = tmp_path / "scan.png"
    scan.write_bytes(degraded_scan_png(world.household.pdf, tmp_path))
    out = tmp_path / "out" / "restored.png"
    result = bcl(world, "scan", scan, "--municipality", "141003", "--issued-on",
                 world.household.record.issued_on.isoformat(), "--out", out)
    assert result.exit_code == 0, result.output
    assert "MATCH" in result.output and "cert-household" in result.output
    restored, compare = Image.open(out), Image.open(tmp_path / "out" / "restored-compare.png")
    assert restored.size == (827, 1169)
    assert compare.size == (2 * 827 + 16, 1169)
    audit = [json.loads(line) for line in (world.data_dir / "audit" / "personal-data-access.jsonl").read_text()
             .splitlines()]
    assert audit[-1]["action"] == "verify-scan" and audit[-1]["records"] == 3  # the sheets issued that day
    assert audit[-1]["matched_certificate"] == "cert-household"

    result = bcl(world, "scan", scan, "--certificate-id", "cert-wife", "--out", tmp_path / "wife.png")
    assert result.exit_code == 2 and "NO MATCH" in result.output
    assert not (tmp_path / "wife-compare.png").exists()


def test_verify_scan_needs_the_certificate_named(world: IssuedWorld, tmp_path: Path) -> None:
    scan = tmp_path / "scan.png"
    Image.new("RGB", (100, 100), "white").save(scan)
    result = bcl(world, "scan", scan, "--municipality", "141003", "--out", tmp_path / "r.png")
    assert result.exit_code != 0 and "--certificate-id" in result.output
