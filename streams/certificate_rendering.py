"""Rendering kiosk certificates for the certificate worker: one renderer set per process.

What is expensive is built once per process (the parsed font, the raster faces, the copy-evident
pattern): `MunicipalRenderers` holds them and, per municipality, a CertificateRenderer sharing them
with that municipality's electronic-seal signer (its seal certificate from the PKI directory) and its
scramble back side (certgen.scramble_keys: the per-municipality key the verification service derives too).

Copies: every copy of a request is its own certificate (own certificate id, billed once), printed
from one PDF: the pages are laid out and rasterised once and repeated per copy, sharing the image
objects, and the whole document is sealed once.

`RenderPool` spreads the rendering over processes (the CPU-heavy part: ~16 ms per certificate with
the back side and the archive PNG: front raster ~6, scramble + JPEG ~5, archive PNG ~2, PDF and seal
~3); with zero processes it renders in the calling process. The front is rasterised once per sheet and
used for both the scramble and the archive.

A renderer process can die rather than raise (a segfault in a native library, the OOM killer,
os._exit): the pool is then broken and every job not yet done in it is lost, whichever job killed it.
`RenderPool.result` renders each lost job again alone, in a renderer process of its own, so that the
job that kills that one too is known for the culprit (RendererKilledError: the worker refuses that
request) and the others are rendered as usual; the pool is restarted. When RENDERER_DEATHS_IN_A_ROW
jobs each kill the renderer they were rendered in alone, with no render succeeding in between, it is
the renderer that is broken (font, memory, installation), not the requests: RenderersBrokenError,
and the worker stops rather than refuse every request.

A renderer that hangs instead (a stuck native call, a machine swapping) is the same case: a render that
takes longer than RENDER_TIME_LIMIT_SECONDS has its pool's processes killed, which breaks the pool, and
its lost jobs are rendered again alone with the same limit.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from certgen.back_side import ScrambleBackSide, copy_evident_background, with_sheet_codes
from certgen.certificate_document import Issuer, ResidentCopyOptions
from certgen.certificate_pdf import CertificateRenderer
from certgen.endpoints import JpkiEndpoints
from certgen.pdf_render import BackSide, PdfImage, PreparedPdf
from certgen.pki_directory import PkiDirectory
from certgen.raster_png import raster_png
from certgen.raster_render import RasterRenderer
from certgen.scramble_keys import scramble_key
from certgen.seal import KeyFileSealSigner, seal_prepared
from certgen.truetype_font import TrueTypeFont
from domain.certificate_types import CertificateType
from domain.disaster_certificate import DisasterCertificate
from domain.errors import BclError
from domain.municipalities import Municipality
from infra.crash_points import crash_point

log = structlog.get_logger("certificate_rendering")

# Jobs in a row that each killed the renderer they were rendered in alone before the renderer, not the
# requests, is taken for broken: a few, so that a broken renderer refuses few requests, and more than one,
# so that two poisoned requests in a row are still refused rather than stop the worker.
RENDERER_DEATHS_IN_A_ROW = 3
# A render takes 20-60 ms of CPU; one that is not done this long after the worker started waiting for it
# is stuck, not slow (on a saturated machine a batch's renders queue behind each other: still seconds).
RENDER_TIME_LIMIT_SECONDS = 30.0

_SYNTHETIC_MAYOR_FAMILY = ("山田", "佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "中村", "小林", "加藤", "吉田")
_SYNTHETIC_MAYOR_GIVEN = ("太郎", "一郎", "健一", "誠", "浩", "和夫", "花子", "洋子", "裕子", "明美", "隆", "修")


def issuer_for(municipality: Municipality) -> Issuer:
    """The certifying authority as printed: 田辺市長 and a mayor's name. The reference data carries no
    mayors, so the name is synthetic (fixed per municipality code), like every resident here."""
    digest = hashlib.sha256(municipality.code.encode()).digest()
    name = (f"{_SYNTHETIC_MAYOR_FAMILY[digest[0] % len(_SYNTHETIC_MAYOR_FAMILY)]}\u3000"
            f"{_SYNTHETIC_MAYOR_GIVEN[digest[1] % len(_SYNTHETIC_MAYOR_GIVEN)]}")
    return Issuer(municipality.code, municipality.name, f"{municipality.name}長", name)


class RendererKilledError(BclError):
    """The job, rendered alone, killed the renderer process: the request's doing (the worker refuses it)."""


class RenderersBrokenError(BclError):
    """The renderer processes die whatever they render: the renderer is broken, not the requests."""


@dataclass(frozen=True)
class RenderJob:
    """Everything a renderer process needs for one request (picklable)."""

    request_id: str
    issuer: Issuer
    kind: CertificateType
    residents: Sequence[dict[str, Any]]
    issued_at: datetime
    copies: int = 1
    options: ResidentCopyOptions | None = None
    fiscal_year: int | None = None
    # One per copy: printed on each back as its sheet's machine-readable id (certgen.sheet_code).
    certificate_ids: tuple[str, ...] = ()
    disaster: DisasterCertificate | None = None  # what a 罹災証明書 or 被災証明書 states


@dataclass(frozen=True)
class RenderedCertificate:
    request_id: str
    pdf: bytes
    sheets_per_copy: int
    front_pngs: tuple[bytes, ...]  # each sheet's front raster, for the issuance archive


class MunicipalRenderers:
    """The renderers of one process; build once (font, raster faces, pattern ~0.5 s)."""

    def __init__(self, font_path: Path, pki: PkiDirectory, scramble_key_secret: str, *, back_side: bool = True) -> None:
        self._pki = pki
        self._secret = scramble_key_secret
        self._font = TrueTypeFont.from_file(font_path)
        self._raster = RasterRenderer(font_path)
        self._background: PdfImage | None = copy_evident_background(font_path)
        self._back_side = back_side
        self._by_municipality: dict[str, CertificateRenderer] = {}

    def renderer_for(self, municipality_code: str) -> CertificateRenderer:
        renderer = self._by_municipality.get(municipality_code)
        if renderer is None:
            credentials = self._pki.seal_credentials(municipality_code)
            signer = KeyFileSealSigner(credentials.key, credentials.certificate, credentials.chain)
            back = ScrambleBackSide(scramble_key(self._secret, municipality_code), self._background)
            renderer = CertificateRenderer(self._font, signer, raster=self._raster,
                                           front_background=self._background,
                                           back_side=back if self._back_side else None)
            self._by_municipality[municipality_code] = renderer
        return renderer

    def render(self, job: RenderJob) -> RenderedCertificate:
        renderer = self.renderer_for(job.issuer.municipality_code)
        layout = renderer.layout(job.kind, job.residents, job.issuer, job.issued_at, options=job.options,
                                 fiscal_year=job.fiscal_year, disaster=job.disaster)
        fronts = renderer.front_rasters(layout)
        crash_point("worker.mid_render", job.request_id)  # laid out and rasterised, not sealed: tests only
        backs: list[BackSide] = []
        if renderer.back_side is not None:
            # One image object per distinct back, shared by every copy of the sheet.
            backs = [replace(back, scramble=PdfImage.of(back.scramble))
                     for back in (renderer.back_side(front) for front in fronts)]
        document = replace(layout, pages=layout.pages * job.copies)
        # Each copy's backs carry its own certificate id (the scramble image objects stay shared).
        backs = with_sheet_codes(backs, job.certificate_ids) if job.certificate_ids else backs * job.copies
        prepared = renderer.prepare(document, job.issuer, job.issued_at, backs)
        assert isinstance(prepared, PreparedPdf) and renderer.signer is not None  # every renderer here seals
        return RenderedCertificate(job.request_id, seal_prepared(prepared, renderer.signer), len(layout.pages),
                                   tuple(raster_png(front) for front in fronts))


# -- the process pool ------------------------------------------------------------------------------

_process_renderers: MunicipalRenderers | None = None


def _init_process(font_path: Path, pki_dir: Path, repository_url: str, secret: str, back_side: bool) -> None:
    global _process_renderers
    _process_renderers = MunicipalRenderers(font_path, PkiDirectory(pki_dir, JpkiEndpoints(repository_url)), secret,
                                            back_side=back_side)


def _render_in_process(job: RenderJob) -> RenderedCertificate:
    assert _process_renderers is not None, "renderer process not initialised"
    return _process_renderers.render(job)


class RenderPool:
    """Renders jobs in `processes` spawned processes (0: in the calling process). Spawned, not
    forked: the worker holds librdkafka threads, which a fork would copy in an undefined state.
    Used from one thread."""

    def __init__(self, processes: int, font_path: Path, pki_dir: Path, repository_url: str,
                 scramble_key_secret: str, *, back_side: bool = True,
                 time_limit: float = RENDER_TIME_LIMIT_SECONDS) -> None:
        self._args = (font_path, pki_dir, repository_url, scramble_key_secret, back_side)
        self.processes = processes
        self.time_limit = time_limit
        self._executor: ProcessPoolExecutor | None = None
        self._alone: ProcessPoolExecutor | None = None  # one process, for the jobs of a broken pool, one at a time
        self._deaths_in_a_row = 0
        self._local: MunicipalRenderers | None = None
        if processes > 0:
            self._executor = self._start(processes)
        else:
            _init_process(*self._args)
            self._local = _process_renderers

    def _start(self, processes: int) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_process, initargs=self._args)
        # Start every process now (imports, font, pattern: seconds), rather than on the first request,
        # where it would count against the render time limit.
        for future in [executor.submit(_warm) for _ in range(processes)]:
            future.result()
        return executor

    def submit(self, job: RenderJob) -> Future[RenderedCertificate]:
        """The job's rendering under way; take it with `result` (which renders it again if the pool broke)."""
        if self._executor is not None:
            try:
                return self._executor.submit(_render_in_process, job)
            except BrokenProcessPool:  # a renderer died since the last submit: its jobs are redone by result()
                self._restart_if_broken()
                return self._executor.submit(_render_in_process, job)
        future: Future[RenderedCertificate] = Future()
        assert self._local is not None
        try:
            future.set_result(self._local.render(job))
        except Exception as exc:  # handed to the caller through the future, as a pool process would
            future.set_exception(exc)
        return future

    def result(self, job: RenderJob, future: Future[RenderedCertificate]) -> RenderedCertificate:
        """The rendering of `job` submitted as `future`. If a renderer process died before it was done, the
        job is rendered again alone (see the module doc): RendererKilledError if it kills that process too,
        RenderersBrokenError if that makes RENDERER_DEATHS_IN_A_ROW; the job's own exceptions propagate."""
        if self._executor is None:  # rendered in this process: already done, nothing can break or hang apart
            return future.result()
        try:
            rendered = self._within_limit(future, self._executor)
        except BrokenProcessPool:
            rendered = self._render_alone(job)
        self._deaths_in_a_row = 0
        return rendered

    def _render_alone(self, job: RenderJob) -> RenderedCertificate:
        self._restart_if_broken()
        if self._alone is None:
            self._alone = self._start(1)
        try:
            return self._within_limit(self._alone.submit(_render_in_process, job), self._alone)
        except BrokenProcessPool:
            self._alone.shutdown(wait=True, cancel_futures=True)
            self._alone = None
        self._deaths_in_a_row += 1
        log.error("renderer_killed_alone", deaths_in_a_row=self._deaths_in_a_row,
                  limit=RENDERER_DEATHS_IN_A_ROW)
        if self._deaths_in_a_row >= RENDERER_DEATHS_IN_A_ROW:
            raise RenderersBrokenError(
                f"the renderer process died on {self._deaths_in_a_row} requests in a row, each rendered alone: "
                "the renderer is broken (font, memory, installation), not the requests; the batch is not "
                "answered and is decided again when the worker is restarted")
        raise RendererKilledError("rendering the request alone killed the renderer process")

    def _within_limit(self, future: Future[RenderedCertificate], executor: ProcessPoolExecutor) -> RenderedCertificate:
        """The future's result; a render still not done after the time limit is taken for a hung renderer:
        the pool's processes are killed, which breaks the pool (BrokenProcessPool, as for a renderer that
        died by itself)."""
        try:
            return future.result(timeout=self.time_limit)
        except FutureTimeout:
            log.error("renderer_hung", time_limit_seconds=self.time_limit)
            # No public way to stop a pool's processes before Python 3.14 (terminate_workers).
            for process in list(executor._processes.values()):
                process.kill()
            return future.result()  # raises BrokenProcessPool once the pool notices its processes died

    def _restart_if_broken(self) -> None:
        """A broken pool (a process died: every job not done in it is lost) replaced by a new one."""
        assert self._executor is not None
        try:
            self._executor.submit(_warm)  # the public way to ask: a broken pool refuses new jobs
        except BrokenProcessPool:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = self._start(self.processes)
            log.warning("renderer_pool_restarted", processes=self.processes)

    def close(self) -> None:
        for executor in (self._executor, self._alone):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)


def _warm() -> bool:
    return _process_renderers is not None
