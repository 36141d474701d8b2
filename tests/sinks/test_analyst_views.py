"""The analyst tables (issue 8 items 4 and 5), over a register materialised through the embedded cluster:
no group any combination of their columns forms is smaller than k residents, they hold no identifier
(plain or pseudonymous: the shipped-key reversal of household numbers finds nothing), an analyst sees
only the municipalities granted to them, and every query is audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pytest

from domain.anonymity import K
from domain.japan_time import JST
from infra.cluster_control import ClusterHandle
from sinks.analyst_grants import AnalystNotGrantedError, change_grants
from sinks.analytics import ANALYST_TABLES, QueryError
from sinks.restore import backup_status
from streams.adapter import publish
from streams.cli import EXIT_ERROR, EXIT_USAGE
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from tests.platforms import make_platform
from tests.streams.commands.test_cli_errors import assert_one_error, bcl

pytestmark = pytest.mark.integration

KITAYAMA, ONAGAWA = "304271", "045811"  # 421 and 6,098 residents
START = dt.datetime(2026, 11, 9, tzinfo=JST)
OLD_SHIPPED_KEY = "bcl-development-pseudonym-key"  # the key earlier versions hashed identifiers with


@dataclass(frozen=True)
class World:
    platform: Platform
    records: list[dict]  # every record the register sent (the full load and a week of changes)


@pytest.fixture(scope="module")
def world(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("analyst-views")
    platform = make_platform(root, cluster)
    reference = load_reference_data()
    names = MaterialiserTopics(**{kind: f"analyst-views.{kind}.{root.name}" for kind in ("diffs", "residents", "dlq")})
    for name in (names.diffs, names.residents):
        cluster.create_topic(name, 8, 3)
    cluster.create_topic(names.dlq, 1, 3)
    records = []
    for code in (KITAYAMA, ONAGAWA):
        simulator = RegisterSimulator(reference, code, seed=11, start=START, font_path=platform.settings.mincho_font)
        events = list(simulator.full_load()) + list(simulator.changes(7))
        records += [e["after"] for e in events if e["after"] is not None]
        publish(events, cluster.bootstrap_servers, platform.registry, platform.register_signer, topic=names.diffs)
    platform.materialiser(group_id=f"analyst-views-{root.name}", topic_names=names).run(
        until_caught_up=True, idle_seconds=0.5)
    change_grants(platform.settings.analyst_grants_file, "both", add=[KITAYAMA, ONAGAWA])
    change_grants(platform.settings.analyst_grants_file, "kitayama", add=[KITAYAMA])
    yield World(platform, records)


def table_rows(world: World, analyst: str, table: str) -> list[tuple]:
    return world.platform.analyst_session(analyst).query(f"SELECT * FROM {table} ORDER BY ALL").rows


def test_no_combination_of_columns_forms_a_group_smaller_than_k(world: World) -> None:
    session = world.platform.analyst_session("both")
    for table in ANALYST_TABLES:
        columns = session.query(f"SELECT * FROM {table} LIMIT 0").columns
        rows = session.query(f"SELECT * FROM {table}").rows
        assert rows, f"{table} is empty"
        # Measured outside the session, on exactly what an analyst can read, for every GROUP BY there is.
        con = duckdb.connect()
        con.execute(f"CREATE TABLE t ({', '.join(f'c{i} VARCHAR' for i in range(len(columns)))})")
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})",
                        [[None if v is None else str(v) for v in row] for row in rows])
        smallest = {}
        for size in range(1, len(columns) + 1):
            for subset in itertools.combinations(range(len(columns)), size):
                group_by = ", ".join(f"c{i}" for i in subset)
                [(n,)] = con.execute(f"SELECT min(n) FROM (SELECT count(*) AS n FROM t GROUP BY {group_by})").fetchall()
                smallest[tuple(columns[i] for i in subset)] = n
        worst = min(smallest, key=smallest.__getitem__)
        assert smallest[worst] >= K, f"{table}: GROUP BY {', '.join(worst)} forms a group of {smallest[worst]}"


def test_the_tables_still_hold_nearly_every_resident(world: World) -> None:
    current = {s.municipality_code: s.residents for s in backup_status(world.platform.snapshot_store)}
    session = world.platform.analyst_session("both")
    shown = dict(session.query("SELECT municipality_code, count(*) FROM residents GROUP BY 1").rows)
    for code in (KITAYAMA, ONAGAWA):
        assert shown[code] >= 0.95 * current[code], (code, shown[code], current[code])
    # Coarsened, not emptied: the larger municipality keeps its areas, with 20-year birth bands.
    [(areas, bands)] = session.query(
        f"SELECT count(DISTINCT area), count(DISTINCT birth_years) FROM residents WHERE municipality_code = '{ONAGAWA}'"
    ).rows
    assert areas >= 10 and bands >= 4, (areas, bands)


def test_no_identifier_is_in_the_tables_and_the_shipped_key_reverses_nothing(world: World) -> None:
    identifiers = set()
    for record in world.records:
        identifiers |= {record["resident_code"], record["individual_number"], record["household_number"],
                        record["municipality_code"] + record["household_number"]}
    # The attack of the issue: household numbers count up from 0000000001, so hash each under the shipped key.
    candidates = {f"{code}{n:010d}" for code in (KITAYAMA, ONAGAWA) for n in range(1, 20_001)} | identifiers
    reversals = {hashlib.sha256(f"{OLD_SHIPPED_KEY}:{value}".encode()).hexdigest() for value in candidates}
    for table in ANALYST_TABLES:
        values = {str(v) for row in table_rows(world, "both", table) for v in row}
        assert not values & identifiers, f"{table} shows identifying numbers"
        assert not values & reversals, f"{table} holds pseudonyms that reverse with the shipped key"
        assert not any(len(v) >= 16 for v in values), f"{table} holds something shaped like an id or a hash"


def test_an_analyst_sees_only_the_granted_municipalities(world: World) -> None:
    session = world.platform.analyst_session("kitayama")
    for table in ANALYST_TABLES:
        codes = session.query(f"SELECT DISTINCT municipality_code FROM {table}").rows
        assert codes == [(KITAYAMA,)], (table, codes)
        # A municipality's rows do not depend on who else the analyst may see (no differencing between grants).
        both = [row for row in table_rows(world, "both", table) if row[0] == KITAYAMA]
        assert table_rows(world, "kitayama", table) == both
    with pytest.raises(AnalystNotGrantedError, match="granted no municipality"):
        world.platform.analyst_session("nobody")
    with pytest.raises(QueryError):  # the sandbox: no file reads, whatever the grant
        session.query(f"SELECT * FROM read_parquet('{world.platform.settings.snapshot_dir}/**/*.parquet')")


def test_every_query_is_audited(world: World) -> None:
    audit = world.platform.settings.audit_file
    before = len(audit.read_text().splitlines()) if audit.exists() else 0
    session = world.platform.analyst_session("kitayama")
    sql = "SELECT sex, count(*) FROM residents GROUP BY sex"
    answered = session.query(sql)
    with pytest.raises(QueryError):
        session.query("SELECT no_such_column FROM residents")
    with pytest.raises(AnalystNotGrantedError):
        world.platform.analyst_session("nobody")
    entries = [json.loads(line) for line in audit.read_text().splitlines()[before:]]
    assert [(e["action"], e["analyst"], e.get("sql"), e["records"], e["outcome"].split(":")[0]) for e in entries] == [
        ("analyst.query", "kitayama", sql, len(answered.rows), "answered"),
        ("analyst.query", "kitayama", "SELECT no_such_column FROM residents", 0, "failed"),
        ("analyst.query", "nobody", None, 0, "refused"),
    ]
    assert entries[0]["municipality_code"] == [KITAYAMA] and entries[0]["actor"]


def test_bcl_query_refuses_unscoped_and_ungranted_access(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = world.platform.settings.data_dir
    assert_one_error(*bcl(capsys, data_dir, "query", "SELECT count(*) FROM residents"), EXIT_USAGE, "--analyst")
    assert_one_error(*bcl(capsys, data_dir, "query", "--analyst", "nobody", "SELECT count(*) FROM residents"),
                     EXIT_ERROR, "analyst nobody is granted no municipality", "bcl analysts grant")
    status, out, err = bcl(capsys, data_dir, "query", "--analyst", "kitayama", "SELECT count(*) AS n FROM residents")
    assert status == 0 and not err, err
    assert "n" in out
