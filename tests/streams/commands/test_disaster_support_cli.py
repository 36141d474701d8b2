"""`bcl disaster support record-amount | pay | show` and the support in `bcl disaster ledger`, through the installed
`bcl` in a subprocess over a data dir whose ledgers were built from the backup (tests.streams.staff_world), with
applications made with a real virtual card and accepted: the amount applied for, payments, what is outstanding per
household and in the ledger's totals; refusals with one `error:` line naming what was wrong and nothing written."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from typing import Any

import pytest

from domain.damage_levels import DamageLevel
from domain.livelihood_recovery_support import Rebuild, livelihood_support
from sinks.staff_scope import household_of
from streams.commands.exit_status import EXIT_ERROR, EXIT_USAGE
from tests.platforms import make_platform
from tests.streams.card_application import apply_with_card, uncarded
from tests.streams.commands.cli_refusals import refused
from tests.streams.commands.test_cli_errors import bcl_process
from tests.streams.staff_world import TANABE, StaffWorld, build_staff_world

TODAY = dt.date.today().isoformat()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> StaffWorld:
    return build_staff_world(tmp_path_factory.mktemp("support-cli") / "data")


def support(world: StaffWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return bcl_process(world.data_dir, "disaster", "support", *args)


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done
    return json.loads(done.stdout)


def accepted_livelihood(world: StaffWorld) -> tuple[str, str, int]:
    """An accepted 被災者生活再建支援金 application of a 田辺市 household whose dwelling is 全壊: its id, the
    household and its size at 発災日時."""
    p = make_platform(world.data_dir)
    now = dt.datetime.now(dt.UTC)
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    person = uncarded(p, rows)
    application = apply_with_card(p, world.disaster_id, person, "LIVELIHOOD_RECOVERY_SUPPORT")
    p.disaster_applications.accept(application.application_id, "tanabe.sato", now)
    p.damage_assessment.survey(world.disaster_id, person["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                               now=now, level="ZENKAI", loss_ratio=None, reason="調査")
    p.disaster_store.close()
    number = household_of(person)
    size = sum(1 for r in rows if r["in_base"] and r["household_number"] == number)
    return application.application_id, number, size


def test_record_pay_show_and_the_ledger(world: StaffWorld) -> None:
    application_id, number, size = accepted_livelihood(world)
    expected = livelihood_support(DamageLevel.ZENKAI, Rebuild.RENT_THEN_BUILD, size)

    recorded = ok_json(support(world, "record-amount", application_id, "--staff", "tanabe.ito", "--rebuild",
                               "rent-then-build", "--json"))
    assert recorded["amount"] == expected.total and recorded["household_size"] == size
    assert recorded["level"] == "ZENKAI" and recorded["statement"] == {"rebuild": "rent-then-build"}
    first = expected.additional_payments[0] + expected.basic
    paid = ok_json(support(world, "pay", world.disaster_id, "--municipality", TANABE, "--household", number,
                           "--procedure", "LIVELIHOOD_RECOVERY_SUPPORT", "--amount", str(first), "--paid-on", TODAY,
                           "--staff", "tanabe.ito", "--reference", "振込-0001", "--json"))
    assert paid == {**paid, "amount": first, "paid_by": "tanabe.ito", "reference": "振込-0001", "paid_on": TODAY}

    shown = ok_json(support(world, "show", world.disaster_id, "--municipality", TANABE, "--household", number,
                            "--json"))
    [household] = shown["households"]
    line = household["procedures"]["LIVELIHOOD_RECOVERY_SUPPORT"]
    assert (line["applied"], line["paid"], line["outstanding"]) == (expected.total, first, expected.total - first)
    assert [(c["old_amount"], c["amount"], c["recorded_by"]) for c in household["history"]] == [
        (None, expected.total, "tanabe.ito")]

    ledger = ok_json(bcl_process(world.data_dir, "disaster", "ledger", world.disaster_id, "--municipality", TANABE,
                                 "--json"))
    assert ledger["support_totals"]["total"] == {"households": 1, "applied": expected.total, "paid": first,
                                                 "outstanding": expected.total - first}
    assert [h["household_number"] for h in ledger["support"]] == [number]
    counts = ok_json(bcl_process(world.data_dir, "disaster", "ledger", world.disaster_id, "--municipality", TANABE,
                                 "--counts", "--json"))
    assert counts["support_totals"] == ledger["support_totals"] and "support" not in counts
    text = bcl_process(world.data_dir, "disaster", "ledger", world.disaster_id, "--municipality", TANABE)
    assert text.returncode == 0, text
    assert f"被災者生活再建支援金: 1 households, applied {expected.total:,} 円, paid {first:,} 円" in text.stdout
    assert f"世帯 {number}: applied {expected.total:,} 円" in text.stdout


def test_refusals_name_what_was_wrong_and_write_nothing(world: StaffWorld) -> None:
    application_id, number, _ = accepted_livelihood(world)
    ok_json(support(world, "record-amount", application_id, "--staff", "tanabe.ito", "--rebuild", "repair",
                    "--json"))
    pay = ["pay", world.disaster_id, "--municipality", TANABE, "--household", number, "--paid-on", TODAY,
           "--staff", "tanabe.ito"]
    before = ok_json(support(world, "show", world.disaster_id, "--municipality", TANABE, "--json"))

    refused(support(world, *pay, "--procedure", "LIVELIHOOD_RECOVERY_SUPPORT", "--amount", "99000000",
                    "--reference", "R-1"), EXIT_ERROR, "above what is granted", "outstanding")
    refused(support(world, *pay, "--procedure", "LIVELIHOOD_RECOVERY_SUPPORT", "--amount", "-5", "--reference",
                    "R-2"), EXIT_USAGE, "--amount", "more than 0")
    refused(support(world, *pay, "--procedure", "CONDOLENCE", "--amount", "1", "--reference", "R-3"), EXIT_ERROR,
            "no accepted application for 災害弔慰金")
    refused(support(world, "pay", world.disaster_id, "--municipality", TANABE, "--household", "NO-SUCH",
                    "--procedure", "CONDOLENCE", "--amount", "1", "--paid-on", TODAY, "--staff", "x", "--reference",
                    "R-4"), EXIT_ERROR, "no household 'NO-SUCH'")
    refused(support(world, *pay, "--procedure", "RISAI_CERTIFICATE", "--amount", "1", "--reference", "R-5"),
            EXIT_USAGE, "--procedure")
    refused(support(world, "record-amount", application_id, "--staff", "tanabe.ito", "--rebuild", "build",
                    "--breadwinner"), EXIT_USAGE, "--breadwinner", "does not apply to 被災者生活再建支援金")
    refused(support(world, "record-amount", "no-such-application", "--staff", "tanabe.ito", "--rebuild", "build"),
            EXIT_ERROR, "no application 'no-such-application'")
    after = ok_json(support(world, "show", world.disaster_id, "--municipality", TANABE, "--json"))
    assert after == before
