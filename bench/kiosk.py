"""Sustained kiosk load through the embedded cluster, next to the render-only ceiling.

What it does, in one run on this machine:
1. starts the embedded 3-broker cluster (a subprocess), publishes one municipality's full load and
   materialises the backup (snapshot store + bcl.residents);
2. issues the residents' JPKI certificates in a fresh test PKI (virtual cards) and the municipality's
   seal certificate;
3. starts the certificate worker (`bcl worker run`, a subprocess) and waits until it answers;
4. runs open-loop kiosk load at increasing rates (many kiosks, several vendors, both centres, the
   realistic certificate mix, a few out-of-town kiosks) and prints, per rate, the achieved
   certificates/s and the request→response latency percentiles;
5. renders, seals and scrambles the certificates that were issued, in a loop without Kafka, in one
   process and in a pool of processes: the render-only ceiling.

Targets (issue 3): at least 30 certificates/s with p99 <= 500 ms; goal 100/s with p99 <= 250 ms.

    .venv/bin/python bench/kiosk.py [--municipality 302040] [--population 3000] [--rates 10,30,60,100]
                                    [--duration 20] [--kiosks 300] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from bench.render import report as render_report
from domain.japan_time import parse_instant
from infra.cluster_control import ClusterHandle
from kiosk_sim.kiosk import OutcomeStatus
from kiosk_sim.load import LoadGenerator, LoadReport, SessionRecord, make_terminals
from kiosk_sim.population import profiles_from_backup
from streams.adapter import publish
from streams.certificate_rendering import RenderedCertificate, RenderJob
from streams.commands.kiosk import print_report
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent

BCL = Path(sys.executable).with_name("bcl")
SATURATED_P99_MS = 5000.0  # beyond this the worker is behind the offered rate: stop raising it
console = Console()


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live descendants (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack += [child for child, parent in parents.items() if parent == pid]
    return total


def step(message: str) -> None:
    console.print(f"[bold]·[/bold] {message}")


def load_municipality(settings: Settings, code: str, population: int) -> RegisterSimulator:
    reference = load_reference_data()
    simulator = RegisterSimulator(reference, code, population=population, seed=settings.seed,
                                  start=parse_instant(settings.simulation_start, "simulation_start"),
                                  font_path=settings.mincho_font)
    platform = Platform(settings)
    t = time.perf_counter()
    result = publish(simulator.full_load(), platform.bootstrap_servers, platform.registry, platform.register_signer)
    step(f"published the full load of {code} {simulator.municipality.name}: {result.delivered} residents "
         f"in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    counters = platform.materialiser().run(until_caught_up=True, idle_seconds=1.0)
    step(f"materialised the backup: {counters.applied} records in {time.perf_counter() - t:.1f} s")
    return simulator


def start_worker(settings: Settings, log_path: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BCL_DATA_DIR": str(settings.data_dir),
           "BCL_BOOTSTRAP_SERVERS": settings.require_bootstrap_servers()}
    log = log_path.open("wb")
    return subprocess.Popen([str(BCL), "worker", "run", *extra], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO_ROOT, start_new_session=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def warm_up(generator: LoadGenerator, worker: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the worker answers: its start-up (resident index, renderers, PKI) is not part of the figures."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}; see {log_path}")
        report = generator.run(2.0, 3.0)
        if report.answered:
            generator.run(10.0, 3.0)  # warm every rendering process and connection
            return
    raise SystemExit(f"the worker did not answer within 180 s; see {log_path}")


def render_jobs(settings: Settings, sessions: list[SessionRecord], limit: int) -> list[RenderJob]:
    """The render jobs of the issued sessions, built as the worker builds them (domain.issuance_decision:
    the record by serial in the backup, the household members, the tax year), from the same backup."""
    from certgen.certificate_document import ResidentCopyOptions
    from domain import kiosk_rules as rules
    from domain.certificate_types import CertificateType
    from streams.certificate_rendering import issuer_for
    from streams.resident_directory import ResidentDirectory

    directory = ResidentDirectory()
    directory.load_snapshot(Platform(settings).snapshot_store)
    reference = load_reference_data()
    now = dt.datetime.now(dt.UTC)
    jobs = []
    for session in sessions:
        if session.outcome.status is not OutcomeStatus.ISSUED or len(jobs) >= limit:
            continue
        choice = session.choice
        kind = CertificateType(choice.certificate_type)
        record = rules.choose_record(directory.by_serial(session.profile.serial))
        assert record is not None and not isinstance(record, rules.Refusal)  # it was issued: one record
        whole = choice.household_scope == "WHOLE_HOUSEHOLD"
        household = directory.household(choice.municipality_code, record["household_number"]) if whole else []
        options = None
        if kind is CertificateType.RESIDENT_RECORD:
            options = ResidentCopyOptions(member_codes=None,
                                          household_head_and_relationship=choice.include_head_and_relationship,
                                          domicile=choice.include_domicile)
        jobs.append(RenderJob(session.outcome.request_id or "", issuer_for(reference.municipality(
            choice.municipality_code)), kind, rules.household_members(record, household, whole),
            now, choice.copies, options, rules.select_tax_year(record, choice.fiscal_year)))
    return jobs


def render_ceiling(settings: Settings, jobs: list[RenderJob], processes: int) -> None:
    """The same certificates rendered, sealed and scrambled in a loop without Kafka: one process, then a pool."""
    from streams.certificate_rendering import RenderPool

    args = (settings.mincho_font, settings.pki_dir, settings.jpki_repository_url,
            Platform(settings).scramble_key_secret)
    console.print(f"render-only ceiling over {len(jobs)} of the issued requests "
                  f"({sum(j.copies for j in jobs)} certificates with copies):")
    local = RenderPool(0, *args)
    for job in jobs[:8]:  # warm the municipality's renderer as the running worker has it
        local.submit(job).result()
    latencies, sizes = [], []
    start = time.perf_counter()
    for job in jobs:
        t = time.perf_counter()
        sizes.append(len(local.submit(job).result().pdf))
        latencies.append(time.perf_counter() - t)
    render_report("1 process  ", latencies, sizes, time.perf_counter() - start)
    pool = RenderPool(processes, *args)
    try:
        for future in [pool.submit(job) for job in jobs[: processes * 4]]:
            future.result()
        latencies, sizes = [], []
        in_flight: list[tuple[float, Future[RenderedCertificate]]] = []
        start = time.perf_counter()
        for job in jobs:
            in_flight.append((time.perf_counter(), pool.submit(job)))
            if len(in_flight) >= processes * 2:
                submitted, future = in_flight.pop(0)
                sizes.append(len(future.result().pdf))
                latencies.append(time.perf_counter() - submitted)
        for submitted, future in in_flight:
            sizes.append(len(future.result().pdf))
            latencies.append(time.perf_counter() - submitted)
        render_report(f"{processes} processes", latencies, sizes, time.perf_counter() - start)
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--municipality", default="302040", help="the municipality loaded (default 302040)")
    parser.add_argument("--population", type=int, default=3000, help="residents of the synthetic register")
    parser.add_argument("--rates", default="10,30,60,100", help="offered requests/s, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--kiosks", type=int, default=300, help="terminals")
    parser.add_argument("--render-processes", type=int, default=2, help="pool size of the render-only ceiling")
    parser.add_argument("--render-count", type=int, default=300, help="issued requests rendered again")
    parser.add_argument("--keep", action="store_true", help="keep the run's data directory")
    parser.add_argument("--worker-arg", action="append", default=[], help="extra argument for `bcl worker run`")
    args = parser.parse_args()

    data_dir = load_settings().data_dir / "bench" / f"kiosk-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = load_settings({"data_dir": data_dir})
    load_before = os.getloadavg()
    console.print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.2f} {load_before[1]:.2f} "
                  f"{load_before[2]:.2f} at start (shared machine)")
    worker = None
    try:
        with ClusterHandle.start(brokers=3, data_dir=data_dir / "cluster") as cluster:
            settings = replace(settings, bootstrap_servers=cluster.bootstrap_servers)
            simulator = load_municipality(settings, args.municipality, args.population)
            now = dt.datetime.now(dt.UTC)
            platform = Platform(settings)
            platform.pki.initialise(now)
            platform.pki.ensure_seal_certificate(args.municipality, simulator.municipality.name, now)
            t = time.perf_counter()
            issuer = platform.card_issuer()
            residents = issuer.population(profiles_from_backup(platform.snapshot_store,
                                                               args.municipality, settings.audit_file), now)
            step(f"{len(residents)} virtual cards ({issuer.counters.issued} certificates issued) "
                 f"in {time.perf_counter() - t:.1f} s")
            reference = load_reference_data()
            prefecture = simulator.municipality.prefecture
            neighbours = [m.code for m in reference.municipalities
                          if m.prefecture == prefecture and m.code != args.municipality][:10]
            terminals = make_terminals(args.kiosks, [args.municipality], neighbours, random.Random(1))
            worker_log = data_dir / "worker.log"
            worker = start_worker(settings, worker_log, args.worker_arg)
            with platform.kiosk_connection(response_timeout=30) as connection:
                generator = LoadGenerator(connection, residents, terminals, seed=7)
                t = time.perf_counter()
                warm_up(generator, worker, worker_log)
                step(f"the worker answers (warm-up {time.perf_counter() - t:.1f} s)")
                reports: list[LoadReport] = []
                for rate in (float(r) for r in args.rates.split(",")):
                    cpu_before = (time.process_time(), tree_cpu_seconds(worker.pid),
                                  tree_cpu_seconds(cluster.pid or 0))
                    report = generator.run(rate, args.duration)
                    cpu = [(after - before) / report.wall_seconds for before, after in zip(cpu_before, (
                        time.process_time(), tree_cpu_seconds(worker.pid), tree_cpu_seconds(cluster.pid or 0)),
                        strict=True)]
                    reports.append(report)
                    p = report.percentiles_ms()
                    console.print(f"offered {rate:5.0f}/s ({report.arrivals} arrivals): "
                                  f"{report.issued_per_second:6.1f} certificates/s issued, "
                                  f"{report.answered_per_second:6.1f} answers/s; request→response p50 {p[50]:5.0f} "
                                  f"ms  p95 {p[95]:5.0f} ms  p99 {p[99]:5.0f} ms  max {p[100]:5.0f} ms; "
                                  f"{report.by_status().get('NO_RESPONSE', 0)} unanswered; CPU cores used: kiosks "
                                  f"{cpu[0]:.2f}, worker {cpu[1]:.2f}, cluster {cpu[2]:.2f}; "
                                  f"load average {os.getloadavg()[0]:.2f}")
                    if report.answered_per_second < 0.9 * report.offered_rate or p[99] > SATURATED_P99_MS:
                        console.print(f"saturated at {rate:g}/s: higher rates would only queue (skipped)")
                        break
            stop_worker(worker)
            print_report(console, reports[-1])
            jobs = render_jobs(settings, [s for r in reports for s in r.sessions], args.render_count)
            render_ceiling(settings, jobs, args.render_processes)
    finally:
        if worker is not None:
            stop_worker(worker)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
