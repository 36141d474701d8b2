"""The verification web page (aiohttp): upload a certificate PDF or a scan/photo of a certificate's back,
see the verdict. A thin shell over certgen.verification: GET / shows the form, POST /verify the result
(valid/invalid with the reasons; for a scan, the restored front beside the issued one and the score).

Verification is CPU work and pyHanko's validator runs its own event loop, so it runs in a worker
thread, never on the server's loop. Uploaded files are kept in memory only and never written anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import html
from collections.abc import Sequence
from datetime import date

from aiohttp import BodyPartReader, web

from certgen.errors import ScrambleError
from certgen.verification import (
    MAX_PDF_BYTES,
    Finding,
    PdfVerification,
    ScanVerification,
    VerificationContext,
    load_scan,
    png_bytes,
    verify_pdf,
    verify_scan,
)

MAX_UPLOAD_BYTES = MAX_PDF_BYTES + 1024 * 1024


_STYLE = """
body { font-family: "IPAexGothic", "Noto Sans CJK JP", sans-serif; margin: 0; background: #f4f6f8; color: #1d2733; }
header { background: #1f4e79; color: white; padding: 14px 28px; }
header h1 { margin: 0; font-size: 20px; }
main { max-width: 1180px; margin: 24px auto; padding: 0 24px; }
section { background: white; border-radius: 6px; padding: 18px 24px; margin-bottom: 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }
label { display: block; margin: 10px 0 4px; font-weight: 600; }
input[type=text], input[type=date] { padding: 6px; width: 260px; }
button { margin-top: 14px; padding: 8px 22px; background: #1f4e79; color: white; border: 0; border-radius: 4px;
         font-size: 15px; cursor: pointer; }
.hint { color: #5a6675; font-size: 13px; }
.verdict { font-size: 22px; font-weight: 700; padding: 10px 14px; border-radius: 4px; }
.verdict.ok { background: #e3f4e6; color: #17612a; }
.verdict.bad { background: #fbe4e4; color: #9b1c1c; }
li.ok::marker { content: "✓  "; color: #17612a; }
li.bad::marker { content: "✗  "; color: #9b1c1c; }
.pair { display: flex; gap: 16px; }
.pair figure { margin: 0; flex: 1; }
.pair img { width: 100%; border: 1px solid #c8d0d8; }
figcaption { font-weight: 600; margin-bottom: 6px; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><header><h1>BCL 証明書の検証 — certificate verification</h1>"
            f"</header><main>{body}</main></body></html>")


_FORM = """
<section>
<form method="post" action="/verify" enctype="multipart/form-data">
  <label for="file">Certificate PDF, or a scan / photo of the back of the paper</label>
  <input id="file" name="file" type="file" accept="application/pdf,image/*" required>
  <p class="hint">For a scan, name the certificate: its id, or the municipality code and the issue date printed
  on the front.</p>
  <label for="certificate_id">Certificate id (optional)</label>
  <input id="certificate_id" name="certificate_id" type="text">
  <label for="municipality">Municipality code (6 digits)</label>
  <input id="municipality" name="municipality" type="text" pattern="[0-9]{6}">
  <label for="issued_on">Issue date printed on the front</label>
  <input id="issued_on" name="issued_on" type="date">
  <br><button id="submit" type="submit">Verify</button>
</form>
</section>
"""


def _findings(findings: Sequence[Finding]) -> str:
    items = "".join(f'<li class="{"ok" if f.ok else "bad"}">{html.escape(f.message)}</li>' for f in findings)
    return f'<ul id="findings">{items}</ul>'


def _verdict(ok: bool, good: str, bad: str) -> str:
    return f'<div id="verdict" class="verdict {"ok" if ok else "bad"}">{html.escape(good if ok else bad)}</div>'


def _img(image_png: bytes, alt: str, element_id: str) -> str:
    data = base64.b64encode(image_png).decode()
    return f'<img id="{element_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def pdf_result_html(result: PdfVerification) -> str:
    details = f"<p class='hint'>SHA-256 {result.pdf_sha256}</p>"
    if result.signer:
        details += f"<p>Sealed by {html.escape(result.signer)}"
        if result.signed_at:
            details += f", at {html.escape(result.signed_at.isoformat())} (as stated in the seal)"
        details += "</p>"
    body = (f"<section>{_verdict(result.valid, 'VALID: a genuine certificate issued by BCL', 'INVALID')}"
            f"{_findings(result.findings)}{details}</section>")
    return _page("Verification result", body + '<p><a href="/">Verify another</a></p>')


def scan_result_html(result: ScanVerification) -> str:
    body = f"<section>{_verdict(result.matches, 'MATCHES an issued certificate', 'NO MATCH')}"
    body += _findings(result.findings)
    if result.score is not None:
        body += (f'<p>Score <span id="score">{result.score:.2f}</span> '
                 f"({result.candidates} issued sheet(s) compared)</p>")
    body += "</section>"
    if result.restored is not None:
        figures = ("<figure><figcaption>Restored from your scan</figcaption>"
                   f"{_img(png_bytes(result.restored), 'restored front', 'restored')}</figure>")
        if result.issued is not None:
            figures += ("<figure><figcaption>As issued</figcaption>"
                        f"{_img(png_bytes(result.issued), 'issued front', 'issued')}</figure>")
        body += (f'<section><p class="hint">Compare the restored front with the paper in your hands: '
                 f'the score does not catch a single altered character.</p><div class="pair">{figures}</div></section>')
    return _page("Verification result", body + '<p><a href="/">Verify another</a></p>')


def error_html(message: str, status_word: str = "Cannot verify") -> str:
    return _page(status_word, f'<section><div id="verdict" class="verdict bad">{html.escape(status_word)}</div>'
                              f"<p id='error'>{html.escape(message)}</p></section>{_FORM}")


async def _index(_request: web.Request) -> web.Response:
    return web.Response(text=_page("Certificate verification", _FORM), content_type="text/html")


def _verify_upload(service: VerificationContext, data: bytes, fields: dict[str, str]) -> str:
    if data.startswith(b"%PDF-"):
        return pdf_result_html(verify_pdf(data, service.seal_roots, service.archive))
    certificate_id = fields.get("certificate_id") or None
    municipality = fields.get("municipality") or None
    issued_on = date.fromisoformat(fields["issued_on"]) if fields.get("issued_on") else None
    scan = load_scan(data)
    result = verify_scan(scan, service.archive, service.key_of, certificate_id=certificate_id,
                         municipality_code=municipality, issued_on=issued_on)
    if service.on_scan_checked is not None and result.candidates:
        service.on_scan_checked(result.municipality_code or "", result.candidates, result.certificate_id)
    return scan_result_html(result)


def make_app(service: VerificationContext) -> web.Application:
    async def verify(request: web.Request) -> web.Response:
        data = b""
        fields: dict[str, str] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                data = bytes(await part.read())
            else:
                fields[part.name] = (await part.text()).strip()
        if not data:
            return web.Response(text=error_html("choose a file to verify"), content_type="text/html", status=400)
        try:
            page = await asyncio.to_thread(_verify_upload, service, data, fields)
        except (ScrambleError, ValueError) as exc:  # not an image, no certificate named, a malformed date
            return web.Response(text=error_html(str(exc)), content_type="text/html", status=400)
        return web.Response(text=page, content_type="text/html")

    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app.add_routes([web.get("/", _index), web.post("/verify", verify)])
    return app
