"""The resident's page of online applications for disaster support (aiohttp; `bcl disaster application-page`),
the project's one web stack with the verification page's security headers (certgen.verification_web
.security_headers: no script, the style by its hash, never framed or cached) and its CSRF tokens
(certgen.verification_csrf, signed double submit, on a cookie of its own).

How the card signs from a page: no browser here can reach a PC/SC reader (and a page with a script talking to a
local signer would need a service on the resident's machine listening for any site). So the page does what
needs no card: GET / is the form (disaster, procedure, mail address); POST /draft checks it and shows the draft
as one line with the command to sign it, `bcl disaster sign DRAFT --pin …` (the card client, through pcscd); the
resident pastes the one line it prints into the page; POST /submit hands it to the intake
(streams.application_intake), which verifies the signature and the certificate and stores the application, and
the page shows the application id and the automatic match. The PIN never reaches the page.

A request the page cannot take is a 4xx with one sentence in Japanese and English naming what was wrong.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from certgen.verification_csrf import FIELD, CsrfTokens
from certgen.verification_web import security_headers
from domain.application_token import draft_text, read_signed
from domain.disaster_applications import PROCEDURE_NAMES, Procedure
from domain.disasters import Disaster
from domain.errors import BclError
from streams.application_intake import ApplicationIntake, new_draft

logger = logging.getLogger(__name__)

COOKIE = "bcl_apply_csrf"
MAX_FORM_BYTES = 64 * 1024  # a signed application is a few KB

_STYLE = """
body { font-family: "IPAexGothic", "Noto Sans CJK JP", sans-serif; margin: 0; background: #f4f6f8; color: #1d2733;
       line-height: 1.6; }
header { background: #7a2e1f; color: white; padding: 14px 28px; }
header h1 { margin: 0; font-size: 22px; }
main { max-width: 980px; margin: 24px auto; padding: 0 24px; }
section { background: white; border-radius: 6px; padding: 18px 24px; margin-bottom: 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.en { display: block; color: #5a6675; font-size: 0.86em; font-weight: normal; }
label { display: block; margin: 14px 0 4px; font-weight: 700; }
input[type=email], select { padding: 7px; width: 420px; font-size: 16px; }
textarea, pre { width: 100%; font-family: monospace; font-size: 12px; word-break: break-all; white-space: pre-wrap; }
button { margin-top: 18px; padding: 9px 26px; background: #7a2e1f; color: white; border: 0; border-radius: 4px;
         font-size: 16px; cursor: pointer; }
.ok { color: #17612a; font-weight: 700; }
.bad { color: #9b1c1c; font-weight: 700; }
"""
SECURITY_HEADERS = security_headers(_STYLE)


def _both(ja: str, en: str) -> str:
    return f'{html.escape(ja)}<span class="en" lang="en">{html.escape(en)}</span>'


def _page(body: str) -> str:
    return ('<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>災害支援のオンライン申請 — '
            f"Online application for disaster support</title><style>{_STYLE}</style></head><body><header><h1>"
            f"{_both('災害支援のオンライン申請', 'Online application for disaster support')}</h1></header>"
            f"<main>{body}</main></body></html>")


def form_html(token: str, disasters: list[Disaster]) -> str:
    options = "".join(f'<option value="{html.escape(d.disaster_id, quote=True)}">{html.escape(d.name)}</option>'
                      for d in disasters)
    procedures = "".join(f'<option value="{p.value}">{html.escape(PROCEDURE_NAMES[p])}</option>' for p in Procedure)
    return _page(f"""<section><form method="post" action="/draft">
<input type="hidden" name="{FIELD}" value="{html.escape(token, quote=True)}">
<label for="disaster_id">{_both("災害", "Disaster")}</label>
<select id="disaster_id" name="disaster_id">{options}</select>
<label for="procedure">{_both("手続", "Procedure")}</label><select id="procedure" name="procedure">{procedures}</select>
<label for="mail">{_both("連絡先メールアドレス", "Mail address for the answer")}</label>
<input id="mail" name="mail" type="email" maxlength="254" autocomplete="email" required>
<button id="draft" type="submit">{_both("申請内容を作成", "Make the application")}</button></form></section>""")


def draft_html(token: str, line: str, disaster: Disaster, procedure: Procedure, mail: str) -> str:
    command = f"bcl disaster sign '{line}' --pin 暗証番号"
    return _page(f"""<section><p>{_both(f"{disaster.name}: {PROCEDURE_NAMES[procedure]}（連絡先 {mail}）",
                                      "Sign this application with your My Number card")}</p>
<p>{_both("カードリーダーのあるパソコンで次のコマンドを実行し、表示された1行を下に貼り付けてください（暗証番号は利用者証明用の4桁）。",
          "Run this on the computer with the card reader and paste the line it prints below (the 4-digit PIN).")}</p>
<pre id="draft_line">{html.escape(line)}</pre><pre id="command">{html.escape(command)}</pre>
<form method="post" action="/submit"><input type="hidden" name="{FIELD}" value="{html.escape(token, quote=True)}">
<label for="signed">{_both("署名済みの申請", "The signed application")}</label>
<textarea id="signed" name="signed" rows="8" required></textarea>
<button id="submit" type="submit">{_both("申請する", "Apply")}</button></form></section>""")


def result_html(application_id: str, matched: bool, reason: str) -> str:
    match = (f'<p id="match" class="ok">{_both("被災者台帳と照合できました", "Matched the ledger")}</p>' if matched
             else f'<p id="match" class="bad">{_both("台帳と照合できませんでした（職員が確認します）", "Not matched")}'
                  f"</p><p>{html.escape(reason)}</p>")
    return _page(f"""<section><p id="result" class="ok">{_both("申請を受け付けました", "Application received")}</p>
<p>{_both("申請番号", "Application number")} <span id="application_id">{html.escape(application_id)}</span></p>
{match}<p>{_both("結果はメールでお知らせします。", "The answer is mailed to you.")}</p></section>""")


def error_html(message: str) -> str:
    return _page(f'<section><p id="error" class="bad">{_both("申請できません", "Cannot apply")}</p>'
                 f'<p id="reason">{html.escape(message)}</p><p><a href="/">戻る / back</a></p></section>')


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8", status=status)


async def _add_security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)  # every answer, aiohttp's own errors included


def make_app(intake: ApplicationIntake, open_disasters: Callable[[], list[Disaster]]) -> web.Application:
    csrf = CsrfTokens()

    def nonce_of(request: web.Request) -> str | None:
        nonce = request.cookies.get(COOKIE)
        return nonce if csrf.valid_nonce(nonce) else None

    async def posted(request: web.Request) -> tuple[str, Mapping[str, str]]:
        """The form's fields, after the CSRF check; the nonce for the next form."""
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPBadRequest(text=error_html("フォームから送信してください / send the page's form"),
                                     content_type="text/html")
        fields = {k: str(v) for k, v in (await request.post()).items()}
        nonce = nonce_of(request)
        if nonce is None or not csrf.accepts(nonce, fields.get(FIELD)):
            raise web.HTTPForbidden(text=error_html("フォームの有効期限が切れたか、このページから送信されていません。"
                                                    "ページを開き直してください / the form has expired or was not sent "
                                                    "from this page: reload it"), content_type="text/html")
        return nonce, fields

    async def index(request: web.Request) -> web.Response:
        nonce = nonce_of(request) or csrf.new_nonce()
        response = _html(form_html(csrf.token(nonce), open_disasters()))
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict", path="/")
        return response

    async def draft(request: web.Request) -> web.Response:
        nonce, fields = await posted(request)
        disasters = {d.disaster_id: d for d in open_disasters()}
        disaster = disasters.get(fields.get("disaster_id", ""))
        if disaster is None:
            return _html(error_html("その災害への申請は受け付けていません / no open disaster of that id"), 400)
        try:
            made = new_draft(disaster.disaster_id, fields.get("procedure", ""), fields.get("mail", ""),
                             intake.now())
        except BclError as exc:
            return _html(error_html(str(exc)), 400)
        return _html(draft_html(csrf.token(nonce), draft_text(made), disaster, made.procedure, made.mail_address))

    async def submit(request: web.Request) -> web.Response:
        _nonce, fields = await posted(request)
        try:
            signed_draft, certificate, signature = read_signed(fields.get("signed", ""))
            # A local SQLite transaction and a signature check: milliseconds, on the loop (the connection is
            # the store's one).
            stored = intake.submit(signed_draft, certificate, signature)
        except BclError as exc:
            return _html(error_html(str(exc)), 400)
        logger.info("application stored: %s", stored.application_id)
        return _html(result_html(stored.application_id, stored.matched, stored.match_reason))

    app = web.Application(client_max_size=MAX_FORM_BYTES)
    app.on_response_prepare.append(_add_security_headers)
    app.add_routes([web.get("/", index), web.post("/draft", draft), web.post("/submit", submit)])
    return app
