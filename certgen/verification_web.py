"""The verification web page (aiohttp): upload a certificate PDF or a scan/photo of a certificate's back,
see the verdict. A thin shell over certgen.verification_request (the same checks as `bcl verify pdf|scan`):
GET / shows the form, POST /verify the result (valid/invalid with the reasons; for a scan, the restored
front beside the issued one and the score).

The page is read by residents and shop clerks: everything is in Japanese first with the English
alongside, and a scan is named by what the paper prints (the issuer 横浜市長 and the date 令和8年11月17日),
not by codes. Whatever is wrong with an upload is one sentence in both languages naming the file or
the field, never an exception's text.

Verification is CPU work and pyHanko's validator runs its own event loop, so it runs in worker threads,
never on the server's loop: scans and PDF checks in separate pools, each check with a deadline, each
client rate-limited (certgen.verification_limits). Uploaded files are kept in memory only and never
written anywhere. Every answer carries a Content-Security-Policy (no script at all; the one style sheet
by its hash; images only as data: URLs), frame-ancestors 'none' and X-Frame-Options DENY, nosniff, no
referrer and no caching (a result shows a person's certificate); the form carries a CSRF token
(certgen.verification_csrf). Whatever is wrong with a request is a 4xx with a one-line message; a 500
is only the service's own failure (its archive or keys).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from aiohttp import BodyPartReader, web

from certgen.verification import (
    Check,
    Finding,
    PdfVerification,
    ScanVerification,
    VerificationContext,
    VerificationInputError,
    png_bytes,
)
from certgen.verification_csrf import COOKIE, FIELD, CsrfTokens
from certgen.verification_limits import Admission, ClientRateLimiter, VerificationLimits, retry_after
from certgen.verification_request import FIELD_NAMES, MAX_UPLOAD_BYTES, check_size, check_upload, is_pdf
from domain.errors import BclError
from domain.japan_time import to_japan_time
from domain.japanese_date import format_japanese_date

logger = logging.getLogger(__name__)

# A typed field longer than this is not an issuer, a date or an id; it is not read further.
MAX_FIELD_CHARS = 200
# An upload over the limit is read on (and dropped) up to this much, so that the browser, which sends
# the whole body before it reads the answer, gets to show the message; beyond it the connection closes.
_DRAIN_LIMIT = 4 * MAX_UPLOAD_BYTES
_TEXT_FIELDS = ("certificate_id", "issuer", "issued_on")

_STYLE = """
body { font-family: "IPAexGothic", "Noto Sans CJK JP", "Hiragino Sans", sans-serif; margin: 0;
       background: #f4f6f8; color: #1d2733; line-height: 1.6; }
header { background: #1f4e79; color: white; padding: 14px 28px; }
header h1 { margin: 0; font-size: 22px; }
header h1 .en { display: inline; color: #d5e3f0; font-size: 15px; margin-left: 12px; }
main { max-width: 1180px; margin: 24px auto; padding: 0 24px; }
section { background: white; border-radius: 6px; padding: 18px 24px; margin-bottom: 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h2 { font-size: 17px; margin: 0 0 8px; }
.en { display: block; color: #5a6675; font-size: 0.86em; font-weight: normal; }
label { display: block; margin: 14px 0 4px; font-weight: 700; }
label .en { display: inline; margin-left: 8px; }
input[type=text] { padding: 7px; width: 320px; font-size: 16px; }
input.invalid { border: 2px solid #9b1c1c; background: #fff5f5; }
fieldset { border: 1px solid #c8d0d8; border-radius: 4px; margin-top: 18px; padding: 4px 16px 14px; }
legend { font-weight: 700; padding: 0 6px; }
button { margin-top: 18px; padding: 9px 26px; background: #1f4e79; color: white; border: 0; border-radius: 4px;
         font-size: 16px; cursor: pointer; }
button .en { display: inline; color: #d5e3f0; margin-left: 6px; }
.hint { color: #5a6675; font-size: 13px; margin: 2px 0; }
.verdict { font-size: 22px; font-weight: 700; padding: 10px 14px; border-radius: 4px; }
.verdict .en { font-size: 15px; color: inherit; opacity: .85; }
.verdict.ok { background: #e3f4e6; color: #17612a; }
.verdict.bad { background: #fbe4e4; color: #9b1c1c; }
#error { font-size: 16px; }
ul#findings { padding-left: 1.4em; }
ul#findings li { margin: 6px 0; }
li.ok::marker { content: "✓  "; color: #17612a; }
li.bad::marker { content: "✗  "; color: #9b1c1c; }
.pair { display: flex; gap: 16px; }
.pair figure { margin: 0; flex: 1; }
.pair img { width: 100%; border: 1px solid #c8d0d8; }
figcaption { font-weight: 700; margin-bottom: 6px; }
"""

def security_headers(style: str) -> dict[str, str]:
    """The headers of every answer of the project's pages: no script at all; the one inline style sheet by its
    hash; images only as data: URLs; forms only to the page itself; never framed, sniffed, referred or cached
    (a result shows a person's certificate or application). Also used by streams.application_web and
    streams.staff_web."""
    style_hash = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return {
        "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{style_hash}'; img-src data:; "
                                    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


SECURITY_HEADERS = security_headers(_STYLE)


def _both(ja: str, en: str) -> str:
    """Japanese, then the English beneath it (marked as English for screen readers and translators)."""
    return f'<span class="ja">{html.escape(ja)}</span><span class="en" lang="en">{html.escape(en)}</span>'


def _page(title_ja: str, title_en: str, body: str) -> str:
    title = html.escape(f"{title_ja} — {title_en}")
    return (f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            f"<style>{_STYLE}</style></head><body><header><h1>{_both('証明書の検証', 'Certificate verification')}"
            f"</h1></header><main>{body}</main></body></html>")


def _text_input(name: str, values: Mapping[str, str], invalid: str | None, placeholder: str) -> str:
    value = html.escape(values.get(name, ""), quote=True)
    css = ' class="invalid" aria-invalid="true"' if invalid == name else ""
    return (f'<input id="{name}" name="{name}" type="text" value="{value}" placeholder="{html.escape(placeholder)}" '
            f'maxlength="{MAX_FIELD_CHARS}" autocomplete="off"{css}>')


def _label(name: str) -> str:
    ja, en = FIELD_NAMES[name]
    english = f'<span class="en" lang="en">{html.escape(en.capitalize())}</span>'
    return f'<label for="{name}">{html.escape(ja)}{english}</label>'


def form_html(csrf_token: str, values: Mapping[str, str] | None = None, invalid: str | None = None) -> str:
    """The upload form; after an error it keeps what was typed and marks the field at fault."""
    values = values or {}
    file_css = ' class="invalid" aria-invalid="true"' if invalid == "file" else ""
    return f"""
<section>
<p>{_both("コンビニで交付された証明書（住民票の写しなど）が、BCLで発行された本物かどうかを確かめます。",
          "Check that a certificate printed at a convenience store (住民票の写し and others) is genuine.")}</p>
<form method="post" action="/verify" enctype="multipart/form-data">
  <input type="hidden" name="{FIELD}" value="{html.escape(csrf_token, quote=True)}">
  {_label("file")}
  <p class="hint">{_both("証明書のPDF、または用紙の裏面（模様の面）をスキャン・撮影した画像",
                         "The certificate PDF, or a scan or photo of the back of the paper (the patterned side)")}</p>
  <input id="file" name="file" type="file" accept="application/pdf,image/*" required{file_css}>
  <fieldset>
    <legend>{_both("裏面下のコードが読み取れない場合のみ、表面に印刷されているとおりに入力",
                   "Only if the code at the bottom of the back cannot be read: type what the front prints")}</legend>
    {_label("issuer")}
    <p class="hint">{_both("証明書の下の、公印の横にある市区町村長名（例: 横浜市長）。6桁の市区町村コードでも可",
                           "The mayor's title beside the official seal at the bottom (e.g. 横浜市長); "
                           "the 6-digit municipality code also works")}</p>
    {_text_input("issuer", values, invalid, "横浜市長")}
    {_label("issued_on")}
    <p class="hint">{_both("市区町村長名の上にある日付（例: 令和8年11月17日。2026-11-17 も可）",
                           "The date above the mayor's name (e.g. 令和8年11月17日, or 2026-11-17)")}</p>
    {_text_input("issued_on", values, invalid, "令和8年11月17日")}
    {_label("certificate_id")}
    <p class="hint">{_both("分かる場合のみ（任意）。入力すると発行者と発行日は不要です",
                           "Only if you have it (optional); with it, the issuer and date are not needed")}</p>
    {_text_input("certificate_id", values, invalid, "")}
  </fieldset>
  <button id="submit" type="submit">検証する<span class="en" lang="en">Verify</span></button>
</form>
</section>
"""


def _findings(findings: Sequence[Finding]) -> str:
    items = "".join(f'<li class="{"ok" if f.ok else "bad"}">{_both(f.message_ja, f.message)}</li>' for f in findings)
    return f'<ul id="findings">{items}</ul>'


def _verdict(ok: bool, good: tuple[str, str], bad: tuple[str, str]) -> str:
    ja, en = good if ok else bad
    return f'<div id="verdict" class="verdict {"ok" if ok else "bad"}">{_both(ja, en)}</div>'


def _img(image_png: bytes, alt: str, element_id: str) -> str:
    data = base64.b64encode(image_png).decode()
    return f'<img id="{element_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# The verdicts (Japanese, English): 有効 is what a person looks for on the page.
_PDF_VALID = ("有効 — BCLが発行した本物の証明書です", "VALID: a genuine certificate issued by BCL")
_PDF_INVALID = ("無効 — 本物の証明書であることを確認できません", "INVALID")
_SCAN_MATCH = ("有効 — 発行済みの証明書と一致しました", "VALID: matches an issued certificate")
_SCAN_NO_MATCH = ("不一致 — 発行済みの証明書と一致しません", "NO MATCH")
_NO_FILE = ("ファイルが選択されていません。証明書のPDFか、用紙の裏面の画像を選んでください",
            "no file was chosen: choose the certificate PDF, or a scan or photo of the back of the paper")
_AGAIN = f'<p><a href="/">{_both("別の証明書を検証する", "Verify another")}</a></p>'


def pdf_result_html(result: PdfVerification) -> str:
    details = ""
    if result.signer:
        if result.signed_at:
            local = to_japan_time(result.signed_at)
            when_ja = f"、{format_japanese_date(local.date())} {local:%H:%M}（電子契印に記載の日時）"
            when_en = f", at {local:%Y-%m-%d %H:%M} Japan time (as stated in the seal)"
        else:
            when_ja = when_en = ""
        details += f"<p>{_both(f'電子契印: {result.signer}{when_ja}', f'Sealed by {result.signer}{when_en}')}</p>"
    details += f"<p class='hint'>SHA-256 {result.pdf_sha256}</p>"
    verdict = _verdict(result.valid, _PDF_VALID, _PDF_INVALID)
    body = f"<section>{verdict}{_findings(result.findings)}{details}</section>"
    return _page("検証結果", "Verification result", body + _AGAIN)


def scan_result_html(result: ScanVerification) -> str:
    body = "<section>" + _verdict(result.matches, _SCAN_MATCH, _SCAN_NO_MATCH)
    body += _findings(result.findings)
    if result.score is not None:
        body += (f'<p>スコア <span id="score">{result.score:.2f}</span>（{result.candidates}枚と照合）'
                 f'<span class="en" lang="en">Score {result.score:.2f} ({result.candidates} issued sheet(s) '
                 f"compared)</span></p>")
    body += "</section>"
    if result.restored is not None:
        figures = (f"<figure><figcaption>{_both('スキャンから復元した表面', 'Restored from your scan')}</figcaption>"
                   f"{_img(png_bytes(result.restored), '復元した表面 / restored front', 'restored')}</figure>")
        if result.issued is not None:
            figures += (f"<figure><figcaption>{_both('発行時の表面', 'As issued')}</figcaption>"
                        f"{_img(png_bytes(result.issued), '発行時の表面 / issued front', 'issued')}</figure>")
        hint = _both("復元した表面をお手元の用紙と見比べてください。スコアでは1文字の書き換えまでは分かりません。",
                     "Compare the restored front with the paper in your hands: the score does not catch a single "
                     "altered character.")
        body += f'<section><p class="hint">{hint}</p><div class="pair">{figures}</div></section>'
    return _page("検証結果", "Verification result", body + _AGAIN)


def error_html(ja: str, en: str, csrf_token: str | None, values: Mapping[str, str] | None = None,
               invalid: str | None = None) -> str:
    """The form again (when the request had a valid CSRF cookie), under the one-line reason why the
    upload could not be verified; without one, a link to a fresh form."""
    again = form_html(csrf_token, values, invalid) if csrf_token is not None else _AGAIN
    body = (f'<section><div id="verdict" class="verdict bad">{_both("検証できません", "Cannot verify")}</div>'
            f'<p id="error">{_both(ja, en)}</p></section>{again}')
    return _page("検証できません", "Cannot verify", body)


def _html(text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8", status=status, headers=headers)


async def _read_part(part: BodyPartReader, limit: int) -> tuple[bytes, int]:
    """The part's bytes up to limit, and its whole size (read on and dropped up to _DRAIN_LIMIT)."""
    kept = bytearray()
    size = 0
    while chunk := await part.read_chunk():
        size += len(chunk)
        if size <= limit:
            kept += chunk
        elif size > _DRAIN_LIMIT:
            break
    return bytes(kept), size


def _render(result: PdfVerification | ScanVerification) -> str:
    return pdf_result_html(result) if isinstance(result, PdfVerification) else scan_result_html(result)


async def _add_security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)  # every answer, aiohttp's own errors (404, 405) included


# Each refusal of a request, (Japanese, English).
_BUSY = ("ただいま混み合っています。しばらくしてから再度お試しください",
         "the verification service is busy: try again in a few seconds")
_TOO_MANY = ("検証の回数が多すぎます。{s}秒ほど待ってから再度お試しください",
             "too many verifications from your address: try again in {s} s")
_TIMED_OUT = ("検証が{s}秒以内に終わりませんでした。時間をおいて再度お試しください",
              "the verification did not finish within {s} s: try again later")
_SLOW_UPLOAD = ("送信が{s}秒以内に終わりませんでした。通信環境を確かめて再度お試しください",
                "the upload did not arrive within {s} s: check the connection and try again")
_NO_FORM = ("送信内容をフォームとして読み取れません。ページを開き直して、ファイルを選んでください",
            "the request is not the page's form (multipart/form-data): reload the page and choose a file")
_CSRF = ("フォームの有効期限が切れたか、このページから送信されていません。ページを開き直してください",
         "the form has expired or was not sent from this page: reload the page and try again")
_UNREADABLE_PDF = ("「{f}」はPDFとして読み取れません（壊れているか途中で切れています）",
                   "“{f}” is not a readable PDF (damaged or cut short)")

_T = TypeVar("_T")


class _Refused(Exception):
    """A request refused before it is checked: the page and status to answer with."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def make_app(service: VerificationContext, limits: VerificationLimits | None = None) -> web.Application:
    limits = limits or VerificationLimits()
    csrf = CsrfTokens()
    clients = ClientRateLimiter(limits)
    in_flight = Admission(limits.max_in_flight)
    scans_admitted = Admission(limits.scan_queue)
    # Separate pools: a PDF check never waits behind scans.
    scan_pool = ThreadPoolExecutor(limits.scan_workers, thread_name_prefix="verify-scan")
    pdf_pool = ThreadPoolExecutor(limits.pdf_workers, thread_name_prefix="verify-pdf")

    def nonce_of(request: web.Request) -> str | None:
        nonce = request.cookies.get(COOKIE)
        return nonce if csrf.valid_nonce(nonce) else None

    async def index(request: web.Request) -> web.Response:
        nonce = nonce_of(request) or csrf.new_nonce()  # kept across visits: other open tabs stay valid
        response = _html(_page("証明書の検証", "Certificate verification", form_html(csrf.token(nonce))))
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict", path="/", secure=request.secure)
        return response

    async def run(pool: ThreadPoolExecutor, timeout: float, call: Callable[[], _T],
                  admission: Admission | None = None) -> _T:
        future: Future[_T] = pool.submit(call)
        if admission is not None:
            # Held until the check really ends: a timed-out scan still occupies its worker.
            future.add_done_callback(lambda _: admission.leave())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            future.cancel()  # still waiting in the pool: it will not run
            seconds = f"{timeout:g}"
            raise _Refused(_html(error_html(_TIMED_OUT[0].format(s=seconds), _TIMED_OUT[1].format(s=seconds), None),
                                 504)) from None

    async def read_form(request: web.Request) -> tuple[dict[str, str], bool, str | None, bytes, int]:
        """The typed fields, whether a file part came, its name, bytes (up to the limit) and size."""
        fields: dict[str, str] = {}
        seen_file, filename, data, size = False, None, b"", 0
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.name == "file":
                    seen_file, filename = True, part.filename
                    data, size = await _read_part(part, MAX_UPLOAD_BYTES)
                elif part.name in (*_TEXT_FIELDS, FIELD):
                    raw, _ = await _read_part(part, MAX_FIELD_CHARS * 4)  # UTF-8: at most 4 bytes a character
                    fields[part.name] = raw.decode("utf-8", "replace").strip()[:MAX_FIELD_CHARS]
        # Not multipart, no boundary, a malformed part header or body: aiohttp says so with these.
        except (AssertionError, ValueError, KeyError, LookupError, web.HTTPException):
            raise _Refused(_html(error_html(*_NO_FORM, None), 400)) from None
        return fields, seen_file, filename, data, size

    async def verify(request: web.Request) -> web.Response:
        wait = clients.take(request.remote or "unknown")
        if wait:
            seconds = retry_after(wait)
            return _html(error_html(_TOO_MANY[0].format(s=seconds), _TOO_MANY[1].format(s=seconds), None), 429,
                         {"Retry-After": seconds})
        if not in_flight.try_enter():
            return _html(error_html(*_BUSY, None), 503, {"Retry-After": str(limits.retry_after_seconds)})
        try:
            return await checked(request)
        except _Refused as refused:
            return refused.response
        finally:
            in_flight.leave()

    async def checked(request: web.Request) -> web.Response:
        try:
            fields, seen_file, filename, data, size = await asyncio.wait_for(read_form(request),
                                                                             limits.upload_timeout_seconds)
        except TimeoutError:
            seconds = f"{limits.upload_timeout_seconds:g}"
            return _html(error_html(_SLOW_UPLOAD[0].format(s=seconds), _SLOW_UPLOAD[1].format(s=seconds), None), 408)
        nonce = nonce_of(request)
        if not csrf.accepts(nonce, fields.pop(FIELD, None)):
            return _html(error_html(*_CSRF, None), 403)
        token = csrf.token(nonce) if nonce else None
        if not seen_file or (size == 0 and not filename):
            return _html(error_html(_NO_FILE[0], _NO_FILE[1], token, fields, "file"), 400)
        try:
            check_size(size, filename)
            def check() -> PdfVerification | ScanVerification:
                return check_upload(service, data, filename, **fields)

            if is_pdf(data):
                result = await run(pdf_pool, limits.pdf_timeout_seconds, check)
            elif scans_admitted.try_enter():
                result = await run(scan_pool, limits.scan_timeout_seconds, check, scans_admitted)
            else:
                return _html(error_html(*_BUSY, token, fields), 503, {"Retry-After": str(limits.retry_after_seconds)})
            if any(f.check is Check.DOCUMENT and not f.ok for f in result.findings):  # no readable PDF at all
                name = filename or "file"
                return _html(error_html(_UNREADABLE_PDF[0].format(f=name), _UNREADABLE_PDF[1].format(f=name),
                                        token, fields, "file"), 400)
        except VerificationInputError as exc:
            status = 413 if size > MAX_UPLOAD_BYTES else 400
            # Nothing named the certificate: the issuer is the first field to fill in.
            invalid = "issuer" if exc.field == "certificate" else exc.field
            return _html(error_html(exc.ja, exc.en, token, fields, invalid), status)
        except BclError as exc:  # the service's own data (archive, keys) failed: not the person's fault
            logger.error("verification failed: %s", exc)
            return _html(error_html("検証中にシステムのエラーが発生しました。時間をおいて再度お試しください",
                                    f"the verification service failed: {exc}", token, fields), 500)
        return _html(_render(result))

    async def shutdown(_app: web.Application) -> None:
        for pool in (scan_pool, pdf_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    app = web.Application(client_max_size=_DRAIN_LIMIT)
    app.on_response_prepare.append(_add_security_headers)
    app.on_cleanup.append(shutdown)
    app.add_routes([web.get("/", index), web.post("/verify", verify)])
    return app
