"""The staff pages of disaster support (aiohttp, server-rendered HTML, no script): sign-in; the disasters of the
staff member's municipality; a ledger's search with its counts first; a household's page (members, dwelling,
level and its history; 連絡先, 要配慮者, 提供同意 and notes editable; a survey of the dwelling; the support money
applied for, paid and outstanding, and a payment recorded); the area page (the
dwellings drawn as an inline SVG map from their coordinates, points coloured by level, no tiles; a GeoJSON upload
previewed, then applied); the household's printable extract (PDF); the inbox of online applications (accept, reject).
Other pages are modules of their own (streams.roster_web, streams.shelter_web) whose routes make_app serves behind
the same middleware, and whose entries are in NAV; they use the request through member_of, form_of, in_store,
staff_page.

A thin shell: each handler gets the signed-in member's sinks.staff_scope.StaffScope from the request (made by the
session middleware) and nothing else of the stores, so what it can read or change is the member's municipality
only, whatever the URL says (the isolation is in the scope's queries, not in which links are shown). Outside the
scope is 404, as for what does not exist; a role's refusal 403; a user's mistake 400 with the one-line reason.

Sessions are server-side (sinks.staff_accounts): the cookie `bcl_staff_session` (HttpOnly, SameSite=Strict,
Secure over https) holds a random token. Every POST carries a CSRF token (certgen.verification_csrf): for a
signed-in member the HMAC of the session token, for the sign-in form that of a nonce cookie. Sign-in attempts
are rate-limited per client address (certgen.verification_limits), and accounts lock after failed sign-ins.
Every answer carries the verification page's security headers (certgen.verification_web.security_headers).

The stores' SQLite connection is used from one worker thread only (`store` below), never from the event loop:
a sign-in's scrypt or a municipality-wide search does not stall the server, and the connection is never used
by two threads at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from certgen.verification_csrf import FIELD, CsrfTokens
from certgen.verification_limits import ClientRateLimiter, VerificationLimits, retry_after
from certgen.verification_web import security_headers
from domain.damage_levels import DamageLevel
from domain.disaster_applications import PROCEDURE_NAMES, ApplicationStatus
from domain.disaster_area import parse_area
from domain.disaster_ledger import LedgerFlag
from domain.disasters import Disaster
from domain.errors import BclError, InvalidArgumentError
from domain.japan_time import to_japan_time
from domain.ledger_staff_items import STAFF_ITEMS, LedgerSearch, ledger_search
from domain.staff_accounts import SignInRefused, StaffMember
from domain.support_payments import yen
from sinks.damage_assessment import AreaPreview
from sinks.disaster_applications import Application
from sinks.staff_accounts import StaffAccounts
from sinks.staff_scope import Household, NotPermitted, OutOfScope, Person, StaffScope, household_of

SESSION_COOKIE = "bcl_staff_session"
CSRF_COOKIE = "bcl_staff_csrf"
MAX_GEOJSON_BYTES = 5 * 1024 * 1024
# Sign-in attempts a client address may make at once, then one every 6 s.
SIGN_IN_LIMITS = VerificationLimits(burst=10, refill_seconds=6.0)

_STYLE = """
body { font-family: "IPAexGothic", "Noto Sans CJK JP", sans-serif; margin: 0; background: #f4f6f8; color: #1d2733; }
header { background: #1f4e79; color: white; padding: 10px 24px; display: flex; justify-content: space-between; }
header a, header button { color: white; }
header form { display: inline; }
main { max-width: 1180px; margin: 18px auto; padding: 0 20px; }
section { background: white; border-radius: 6px; padding: 14px 20px; margin-bottom: 14px;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h1 { font-size: 19px; margin: 0; } h2 { font-size: 16px; margin: 0 0 8px; }
label { margin-right: 12px; } input[type=text], input[type=password], select, textarea { padding: 4px; }
textarea { width: 100%; height: 60px; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #dde2e8; padding: 4px 6px;
          text-align: left; font-size: 14px; }
.counts span { display: inline-block; margin-right: 16px; } .error { color: #9b1c1c; font-weight: 700; }
.ok { color: #17612a; font-weight: 700; } svg { border: 1px solid #c8d0d8; background: #fbfcfd; }
.legend span { margin-right: 12px; } .swatch { display: inline-block; width: 10px; height: 10px; }
"""
_HEADERS = security_headers(_STYLE)

# Point colours of the map, by level (the worst red), and of a dwelling without one.
LEVEL_COLOURS: Mapping[DamageLevel | None, str] = {
    DamageLevel.ZENKAI: "#b2182b", DamageLevel.DAIKIBO_HANKAI: "#d6604d", DamageLevel.CHUKIBO_HANKAI: "#f4a582",
    DamageLevel.HANKAI: "#fddbc7", DamageLevel.JUN_HANKAI: "#92c5de", DamageLevel.ICHIBU_SONKAI: "#4393c3",
    None: "#9aa4ae"}
_MAP_WIDTH, _MAP_HEIGHT = 760, 520

_T = TypeVar("_T")
# What the session middleware gives the handlers.
_MEMBER = web.RequestKey("member", StaffMember)
_SCOPE = web.RequestKey("scope", StaffScope)
_TOKEN = web.RequestKey("token", str)  # the session's
_CSRF = web.RequestKey("csrf", str)  # the CSRF token of the session's forms
_NONCE = web.RequestKey("nonce", "str | None")  # the sign-in form's CSRF nonce
_FORM = web.RequestKey("form", "MultiDictProxy[Any]")
_STALE_FORM = "フォームの有効期限が切れたか、このページから送信されていません。"
Clock = Callable[[], dt.datetime]
Extract = Callable[[Household, StaffMember, dt.datetime], bytes]
# The app's runner of store calls (its one worker thread), for the page modules' handlers.
_STORE = web.AppKey("store", "Callable[[Callable[[], Any]], Awaitable[Any]]")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _level_name(level: DamageLevel | None) -> str:
    return "未認定" if level is None else level.japanese


def _when(instant: dt.datetime) -> str:
    return f"{to_japan_time(instant):%Y-%m-%d %H:%M}"


# The navigation of a signed-in member: (path, label), in order; a page module's routes go to make_app's `routes`,
# its entry here.
NAV: tuple[tuple[str, str], ...] = (
    ("/", "災害・被災者台帳"), ("/roster", "避難行動要支援者名簿"), ("/shelters", "避難所"),
    ("/safety", "安否確認"))


def _page(title: str, body: str, member: StaffMember | None = None, csrf_token: str = "") -> str:
    signed_in = ""
    if member is not None:
        links = "".join(f'<a href="{_e(path)}">{_e(label)}</a> ' for path, label in NAV)
        signed_in = (f'<nav id="nav">{links}</nav>'
                     f'<span id="member">{_e(member.login)}（{_e(member.municipality_code)}・{_e(member.role)}）'
                     f'<form method="post" action="/signout"><input type="hidden" name="{FIELD}" '
                     f'value="{_e(csrf_token)}"><button id="signout" type="submit">サインアウト</button></form></span>')
    return (f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<style>{_STYLE}</style></head><body><header><h1><a href="/">被災者支援 職員ページ</a></h1>{signed_in}'
            f"</header><main>{body}</main></body></html>")


def _html(text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8", status=status, headers=headers)


def _redirect(location: str) -> web.Response:
    """A 303 to a page (after a POST: reloading the page does not send the form again)."""
    return web.Response(status=303, headers={"Location": location})


def _csrf_field(token: str) -> str:
    return f'<input type="hidden" name="{FIELD}" value="{_e(token)}">'


def _sign_in_html(token: str, error: str | None = None) -> str:
    message = f'<p id="error" class="error">{_e(error)}</p>' if error else ""
    return _page("サインイン", f"""<section><h2>サインイン</h2>{message}
<form method="post" action="/signin">{_csrf_field(token)}
<p><label for="login">ログイン名</label><input id="login" name="login" type="text" autocomplete="username"></p>
<p><label for="password">パスワード</label><input id="password" name="password" type="password"
 autocomplete="current-password"></p>
<button id="submit" type="submit">サインイン</button></form></section>""")


def _household_url(disaster_id: str, municipality_code: str, household_number: str) -> str:
    return (f"/d/{quote(disaster_id, safe='')}/m/{quote(municipality_code, safe='')}/h/"
            f"{quote(household_number, safe='')}")


def _of(disaster_id: str, municipality_code: str) -> str:
    """The path of what a municipality's ledger of a disaster holds (people, dwellings)."""
    return f"/d/{quote(disaster_id, safe='')}/m/{quote(municipality_code, safe='')}"


def _options(values: list[tuple[str, str]], selected: str) -> str:
    return "".join(f'<option value="{_e(v)}"{" selected" if v == selected else ""}>{_e(label)}</option>'
                   for v, label in values)


_LEVEL_OPTIONS = [("", "（すべて）"), ("none", "未認定"), *((lv.value, lv.japanese) for lv in DamageLevel)]
_FLAG_OPTIONS = [("", "（すべて）"), *((f.value, f.value) for f in LedgerFlag)]


def _search_html(disaster: Disaster, form: Mapping[str, str], criteria: LedgerSearch, scope: StaffScope) -> str:
    result = scope.search(disaster.disaster_id, criteria)
    d = quote(disaster.disaster_id, safe="")
    counts = "".join(f"<span>{_e(_level_name(None if k == 'none' else DamageLevel(k)))}: {n}</span>"
                     for k, n in sorted(result.by_level.items()))
    flags = "".join(f"<span>{_e(k)}: {n}</span>" for k, n in sorted(result.by_flag.items()))
    code = scope.member.municipality_code
    rows = "".join(
        f'<tr><td><a href="{_household_url(disaster.disaster_id, code, household_of(p.row))}">'
        f"{_e(household_of(p.row))}</a></td><td>{_e(p.row['family_name'])} {_e(p.row['given_name'])}</td>"
        f"<td>{_e(p.row['family_name_kana'])} {_e(p.row['given_name_kana'])}</td>"
        f"<td>{_e(p.row['current_address'])}</td><td>{_e(_level_name(level))}</td>"
        f"<td>{'要配慮者' if p.vulnerable else ''}</td><td>{_e(p.row['flags'])}</td></tr>"
        for p, level in result.rows)
    more = (f"<p>先頭の{len(result.rows)}件を表示しています。条件を絞ってください。</p>"
            if result.matches > len(result.rows) else "")
    return f"""<section><h2>{_e(disaster.name)}</h2>
<p><a href="/d/{d}/area">地図と区域の登録</a>・<a href="/d/{d}/applications">オンライン申請</a>・<a
 href="/d/{d}/shelters">避難所</a></p>
<form method="get" action="/d/{d}">
<label>フリガナ <input id="kana" name="kana" type="text" value="{_e(form.get('kana', ''))}"></label>
<label>住所 <input id="address" name="address" type="text" value="{_e(form.get('address', ''))}"></label>
<label>被害 <select id="level" name="level">{_options(_LEVEL_OPTIONS, form.get('level', ''))}</select></label>
<label>フラグ <select id="flag" name="flag">{_options(_FLAG_OPTIONS, form.get('flag', ''))}</select></label>
<label><input id="vulnerable" name="vulnerable" type="checkbox" value="1"
{' checked' if criteria.vulnerable else ''}> 要配慮者のみ</label>
<button id="search" type="submit">検索</button></form></section>
<section class="counts"><h2>件数</h2><p><span>該当 <b id="matches">{result.matches}</b> 人</span>
<span>世帯 <b id="households">{result.households}</b></span><span>要配慮者 <b id="vulnerable-count">
{result.vulnerable}</b></span></p><p>{counts}</p><p>{flags}</p></section>
<section><table id="results"><tr><th>世帯</th><th>氏名</th><th>フリガナ</th><th>住所</th><th>被害</th><th>要配慮</th>
<th>フラグ</th></tr>{rows}</table>{more}</section>"""


def _items_form(disaster_id: str, municipality_code: str, person: Person, token: str) -> str:
    code = person.row["resident_code"]
    fields = ""
    for item in STAFF_ITEMS:
        value = person.items.get(item.name, "")
        element = f"{item.name}-{code}"
        control = (f'<textarea id="{_e(element)}" name="{item.name}">{_e(value)}</textarea>' if item.multiline else
                   f'<input id="{_e(element)}" name="{item.name}" type="text" value="{_e(value)}" '
                   f'maxlength="{item.max_chars}">')
        fields += f"<p><label for=\"{_e(element)}\">{_e(item.japanese)}</label>{control}</p>"
    action = f"{_of(disaster_id, municipality_code)}/r/{quote(code, safe='')}/items"
    return (f'<form method="post" action="{_e(action)}">{_csrf_field(token)}{fields}'
            f'<button id="save-{_e(code)}" type="submit">保存</button></form>')


def _household_html(h: Household, token: str, saved: bool) -> str:
    d = h.disaster.disaster_id
    members = ""
    for p in h.members:
        r = p.row
        members += (f"<section><h2>{_e(r['family_name'])} {_e(r['given_name'])}（{_e(r['family_name_kana'])} "
                    f"{_e(r['given_name_kana'])}）</h2><p>生年月日 {_e(r['birth_date'])}・{_e(r['relationship'])}・"
                    f"状態 {_e(r['current_status'])}・現住所 {_e(r['current_address'])}・フラグ "
                    f"{_e(r['flags'] or 'なし')}</p>{_items_form(d, h.municipality_code, p, token)}</section>")
    level = h.assessment.level if h.assessment else None
    history = "".join(f"<tr><td>{_e(_when(c.recorded_at))}</td><td>{_e(_level_name(c.old_level))}</td>"
                      f"<td>{_e(_level_name(c.new_level))}</td><td>{_e(c.source)}</td><td>{_e(c.changed_by)}</td>"
                      f"<td>{_e(c.reason or '')}</td></tr>" for c in h.history)
    survey = ""
    if h.dwelling is not None:
        action = f"{_of(d, h.municipality_code)}/w/{quote(h.dwelling.dwelling_id, safe='')}/survey"
        survey = (f'<form method="post" action="{_e(action)}">{_csrf_field(token)}'
                  f'<input type="hidden" name="household" value="{_e(h.household_number)}">'
                  '<label>損害割合（0〜1、例 0.45） '
                  '<input id="loss_ratio" name="loss_ratio" type="text" size="6"></label>'
                  f'<label>または被害の程度 <select id="survey-level" name="level">'
                  f'{_options([("", "（損害割合から）"), *((lv.value, lv.japanese) for lv in DamageLevel)], "")}'
                  f'</select></label><label>理由 <input id="survey-reason" name="reason" type="text"></label>'
                  f'<button id="survey" type="submit">調査結果を記録</button></form>')
    address = h.dwelling.address if h.dwelling else h.members[0].row["current_address"]
    notice = '<p id="saved" class="ok">保存しました。</p>' if saved else ""
    support = _support_html(h, token)
    extract = f"{_household_url(d, h.municipality_code, h.household_number)}/extract.pdf"
    return f"""<section><h2>世帯 <span id="household">{_e(h.household_number)}</span>（{_e(h.disaster.name)}）</h2>
{notice}<p>住家 {_e(address)}・被害の程度 <b id="level">{_e(_level_name(level))}</b></p>
<p><a id="extract" href="{_e(extract)}">台帳の抜粋（PDF）</a></p></section>
<section><h2>住家被害認定</h2><table id="history"><tr><th>記録日時</th><th>変更前</th><th>変更後</th><th>区分</th>
<th>担当</th><th>理由</th></tr>{history}</table>{survey}</section>{support}{members}"""


def _support_html(h: Household, token: str) -> str:
    """The household's support money: per procedure applied for, paid, outstanding, and what the dwelling's
    current level would give (the amount applied for stays what it was after a re-survey); the payments; a form
    to record one."""
    rows, paid_rows = "", ""
    for p in h.support.procedures if h.support else []:
        name = p.procedure.value
        current = "".join(
            f"<div>{'—' if a.current is None else _e(yen(a.current.amount))}"
            f"{'（申請時と異なる）' if a.changed_since else ''}</div>" for a in p.amounts)
        basis = "".join(f"<div>{_e(a.basis)}（{_e(a.recorded_by)} {_e(_when(a.recorded_at))}）</div>"
                        for a in p.amounts)
        rows += (f'<tr><td>{_e(PROCEDURE_NAMES[p.procedure])}</td><td id="support-applied-{name}">'
                 f'{_e(yen(p.applied))}</td><td>{basis}</td><td id="support-current-{name}">{current}</td>'
                 f'<td id="support-paid-{name}">{_e(yen(p.paid))}</td>'
                 f'<td id="support-outstanding-{name}">{_e(yen(p.outstanding))}</td></tr>')
        paid_rows += "".join(f"<tr><td>{_e(PROCEDURE_NAMES[p.procedure])}</td><td>{_e(x.paid_on.isoformat())}</td>"
                             f"<td>{_e(yen(x.amount))}</td><td>{_e(x.paid_by)}</td><td>{_e(x.reference)}</td></tr>"
                             for x in p.payments)
    if not rows:
        return ('<section><h2>支援金等</h2><p id="support-none">受理された支援の申請の額は記録されていません。</p>'
                "</section>")
    changes = "".join(f"<tr><td>{_e(_when(c.recorded_at))}</td><td>{_e(PROCEDURE_NAMES[c.procedure])}</td>"
                      f"<td>{'—' if c.old_amount is None else _e(yen(c.old_amount))}</td><td>{_e(yen(c.amount))}</td>"
                      f"<td>{_e(_level_name(c.level))}</td><td>{_e(c.recorded_by)}</td></tr>"
                      for c in h.support.history) if h.support else ""
    action = f"{_household_url(h.disaster.disaster_id, h.municipality_code, h.household_number)}/payments"
    choices = [(p.procedure.value, PROCEDURE_NAMES[p.procedure]) for p in h.support.procedures] if h.support else []
    return f"""<section><h2>支援金等</h2><table id="support"><tr><th>手続</th><th>申請額</th><th>算定</th>
<th>現在の認定での額</th><th>支払済</th><th>未払</th></tr>{rows}</table>
<p>申請額は申請時の被害の程度によるもので、再調査で程度が変わっても変わりません。</p>
<h2>申請額の記録</h2><table id="support-history"><tr><th>記録日時</th><th>手続</th><th>変更前</th><th>申請額</th>
<th>被害の程度</th><th>担当</th></tr>{changes}</table>
<h2>支払</h2><table id="payments"><tr><th>手続</th><th>支払日</th><th>金額</th><th>担当</th><th>参照番号</th></tr>
{paid_rows}</table>
<form method="post" action="{_e(action)}">{_csrf_field(token)}
<label>手続 <select id="pay-procedure" name="procedure">{_options(choices, "")}</select></label>
<label>金額（円） <input id="pay-amount" name="amount" type="text" size="10"></label>
<label>支払日 <input id="pay-date" name="paid_on" type="date"></label>
<label>参照番号 <input id="pay-reference" name="reference" type="text" maxlength="64"></label>
<button id="pay" type="submit">支払を記録</button></form></section>"""


def _map_svg(points: list[tuple[float, float, DamageLevel | None, str]],
             polygon: list[list[tuple[float, float]]] | None = None) -> str:
    """The dwellings as points on an equirectangular projection fitted to them (longitude scaled by the cosine
    of the middle latitude, so that distances look right), and the area's rings if given."""
    lons = [p[0] for p in points] + [x for ring in polygon or [] for x, _ in ring]
    lats = [p[1] for p in points] + [y for ring in polygon or [] for _, y in ring]
    if not lons:
        return '<p>住家がありません。</p>'
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    scale_x = math.cos(math.radians((south + north) / 2))
    span = max((east - west) * scale_x, north - south, 1e-6)
    unit = min(_MAP_WIDTH, _MAP_HEIGHT) * 0.92 / span

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (20 + (lon - west) * scale_x * unit, _MAP_HEIGHT - 20 - (lat - south) * unit)

    circles = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LEVEL_COLOURS[level]}" '
                      f'data-level="{_e(level.value if level else "none")}"><title>{_e(title)}</title></circle>'
                      for lon, lat, level, title in points for x, y in [xy(lon, lat)])
    rings = "".join('<polygon class="area" fill="none" stroke="#1f4e79" stroke-width="2" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(*c) for c in ring)) + '"/>' for ring in polygon or [])
    legend = "".join(f'<span><svg width="10" height="10"><rect width="10" height="10" fill="{colour}"/></svg> '
                     f"{_e(_level_name(level))}</span>" for level, colour in LEVEL_COLOURS.items())
    return (f'<svg id="map" xmlns="http://www.w3.org/2000/svg" width="{_MAP_WIDTH}" height="{_MAP_HEIGHT}" '
            f'viewBox="0 0 {_MAP_WIDTH} {_MAP_HEIGHT}" role="img" aria-label="住家の地図">{circles}{rings}</svg>'
            f'<p class="legend">{legend}</p>')


def _area_form(disaster_id: str, token: str) -> str:
    d = quote(disaster_id, safe="")
    return f"""<section><h2>区域の登録（GeoJSON）</h2>
<form method="post" action="/d/{d}/area/preview" enctype="multipart/form-data">{_csrf_field(token)}
<p><input id="geojson" name="geojson" type="file" accept=".geojson,.json,application/geo+json,application/json"></p>
<p><label>被害の程度 <select id="area-level" name="level">
{_options([(lv.value, lv.japanese) for lv in DamageLevel], "")}</select></label>
<label><input id="overwrite" name="overwrite" type="checkbox" value="1"> 個別調査済みの住家も上書きする</label></p>
<button id="preview" type="submit">件数を確認</button></form></section>"""


def _preview_html(disaster: Disaster, preview: AreaPreview, geojson: str, reason: str, token: str,
                  map_svg: str) -> str:
    d = quote(disaster.disaster_id, safe="")
    kept = "上書き" if preview.overwrite_surveyed else "そのまま"
    return f"""<section><h2>区域の確認（{_e(preview.level.japanese)}）</h2>
<p class="counts"><span>区域内の住家 <b id="preview-dwellings">{preview.dwellings}</b></span>
<span>世帯 <b id="preview-households">{preview.households}</b></span>
<span>個別調査済み <b id="preview-surveyed">{preview.surveyed}</b>（{kept}）</span>
<span>変更される住家 <b id="preview-changes">{preview.changes}</b></span></p>{map_svg}
<form method="post" action="/d/{d}/area/apply">{_csrf_field(token)}
<input type="hidden" name="level" value="{_e(preview.level.value)}">
<input type="hidden" name="overwrite" value="{'1' if preview.overwrite_surveyed else ''}">
<textarea name="geojson" hidden>{_e(geojson)}</textarea>
<p><label>理由 <input id="area-reason" name="reason" type="text" value="{_e(reason)}"></label></p>
<button id="apply" type="submit">この区域に適用する</button></form></section>"""


def _applications_html(disaster: Disaster, municipality_code: str, applications: list[Application],
                       token: str) -> str:
    d = quote(disaster.disaster_id, safe="")
    rows = ""
    for a in applications:
        who = (f'<a href="{_e(_household_url(disaster.disaster_id, municipality_code, a.household_number))}">'
               f"{_e(a.household_number)}</a>" if a.household_number and a.municipality_code == municipality_code
               else "照合できず")
        decision = f"{_e(a.status)}（{_e(a.decided_by)}）{_e(a.decision_reason or '')}" if a.decided_by else ""
        if a.status is ApplicationStatus.OPEN:
            action = f"/d/{d}/applications/{quote(a.application_id, safe='')}/decide"
            decision = (f'<form method="post" action="{_e(action)}">{_csrf_field(token)}'
                        f'<input name="reason" type="text" placeholder="理由（却下は必須）">'
                        f'<button name="decision" value="accept" type="submit">受理</button>'
                        f'<button name="decision" value="reject" type="submit">却下</button></form>')
        rows += (f'<tr id="application-{_e(a.application_id)}"><td>{_e(_when(a.applied_at))}</td>'
                 f"<td>{_e(PROCEDURE_NAMES[a.procedure])}</td><td>{who}</td><td>{_e(a.match_reason)}</td>"
                 f'<td>{_e(a.mail_address)}</td><td class="status">{_e(a.status)}</td><td>{decision}</td></tr>')
    return (f"<section><h2>{_e(disaster.name)}：オンライン申請</h2><p>申請 <b id=\"applications-count\">"
            f"{len(applications)}</b> 件</p><table id=\"applications\"><tr><th>申請日時</th><th>手続</th><th>世帯</th>"
            f"<th>照合</th><th>連絡先</th><th>状態</th><th>判断</th></tr>{rows}</table></section>")


def _rings(area: Any) -> list[list[tuple[float, float]]]:
    polygons = getattr(area, "geoms", [area])
    return [[(float(x), float(y)) for x, y in p.exterior.coords] for p in polygons]


def _form_text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


# -- what the page modules (streams.roster_web, streams.shelter_web) use of a request ------------------------------

def member_of(request: web.Request) -> StaffMember:
    """The signed-in member (the session middleware has checked the session and, for a POST, the CSRF token)."""
    return request[_MEMBER]


def form_of(request: web.Request) -> dict[str, str]:
    """The text fields of a POST's form (its CSRF token checked)."""
    return {k: v for k, v in request[_FORM].items() if isinstance(v, str)}


def query_of(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.query.items() if isinstance(v, str)}


async def in_store(request: web.Request, call: Callable[[], _T]) -> _T:
    """`call` on the stores' worker thread (never on the event loop)."""
    result: _T = await request.app[_STORE](call)
    return result


def staff_page(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
    """A page of the staff pages' frame: the member, the navigation, the sign-out form."""
    return _html(_page(title, body, request[_MEMBER], request[_CSRF]), status)


def csrf_field_of(request: web.Request) -> str:
    """The hidden CSRF field of a form of this session."""
    return _csrf_field(request[_CSRF])


def make_app(accounts: StaffAccounts, scope_of: Callable[[StaffMember], StaffScope], extract: Extract,
             clock: Clock, sign_in_limits: VerificationLimits = SIGN_IN_LIMITS,
             routes: Sequence[web.RouteDef] = ()) -> web.Application:
    """The staff pages; `routes` are the page modules' (streams.roster_web, streams.shelter_web), behind the same
    sign-in, CSRF check and answers to OutOfScope (404), NotPermitted (403) and a user's mistake (400)."""
    csrf = CsrfTokens()
    sign_ins = ClientRateLimiter(sign_in_limits)
    pool = ThreadPoolExecutor(1, thread_name_prefix="staff-store")

    async def store(call: Callable[[], _T]) -> _T:
        return await asyncio.wrap_future(pool.submit(call))

    def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
        response.set_cookie(name, value, httponly=True, samesite="Strict", path="/", secure=request.secure)

    def fail(status: int, message: str, request: web.Request) -> web.Response:
        member: StaffMember | None = request.get(_MEMBER)
        token = request.get(_CSRF, "")
        body = f'<section><p id="error" class="error">{_e(message)}</p><p><a href="/">戻る</a></p></section>'
        return _html(_page("エラー", body, member, token), status)

    @web.middleware
    async def headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(_HEADERS)
            raise
        response.headers.update(_HEADERS)
        return response

    @web.middleware
    async def session(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        """The member of the session (or the sign-in page), and the CSRF check of every POST."""
        if request.path == "/signin":
            nonce = request.cookies.get(CSRF_COOKIE)
            request[_NONCE] = nonce if csrf.valid_nonce(nonce) else None
            if request.method == "POST":
                form = await request.post()
                if not csrf.accepts(request[_NONCE], _form_text(form, FIELD)):
                    nonce = request[_NONCE] or csrf.new_nonce()
                    refused = _html(_sign_in_html(csrf.token(nonce), _STALE_FORM + "もう一度サインインしてください"),
                                    403)
                    set_cookie(refused, request, CSRF_COOKIE, nonce)
                    return refused
                request[_FORM] = form
            return await handler(request)
        token = request.cookies.get(SESSION_COOKIE)
        member = await store(lambda: accounts.session(token, clock()))
        if member is None or token is None:
            return _redirect("/signin")
        request[_MEMBER], request[_TOKEN] = member, token
        request[_CSRF] = csrf.token(token)
        if request.method == "POST":
            form = await request.post()
            if not csrf.accepts(token, _form_text(form, FIELD)):
                return fail(403, _STALE_FORM + "ページを開き直してください", request)
            request[_FORM] = form
        request[_SCOPE] = scope_of(member)
        try:
            return await handler(request)
        except OutOfScope:
            return fail(404, "見つかりません（この市区町村の台帳にありません）", request)
        except NotPermitted as exc:
            return fail(403, str(exc), request)
        except InvalidArgumentError as exc:
            return fail(400, exc.reason if exc.reason.startswith(exc.argument) else f"{exc.argument}: {exc.reason}",
                        request)
        except BclError as exc:
            return fail(400, str(exc), request)

    async def sign_in_page(request: web.Request) -> web.Response:
        nonce = request[_NONCE] or csrf.new_nonce()
        response = _html(_sign_in_html(csrf.token(nonce)))
        set_cookie(response, request, CSRF_COOKIE, nonce)
        return response

    async def sign_in(request: web.Request) -> web.StreamResponse:
        wait = sign_ins.take(request.remote or "unknown")
        token = csrf.token(request[_NONCE])
        if wait:
            seconds = retry_after(wait)
            return _html(_sign_in_html(token, f"試行が多すぎます。{seconds}秒後に再度お試しください"), 429,
                         {"Retry-After": seconds})
        form = request[_FORM]
        try:
            session_token = await store(lambda: accounts.sign_in(_form_text(form, "login"),
                                                                 _form_text(form, "password"), clock()))
        except SignInRefused:
            return _html(_sign_in_html(token, "ログイン名またはパスワードが違います（5回続けて間違えると15分間"
                                              "サインインできません）"), 401)
        response = _redirect("/")
        set_cookie(response, request, SESSION_COOKIE, session_token)
        return response

    async def sign_out(request: web.Request) -> web.StreamResponse:
        await store(lambda: accounts.sign_out(request[_TOKEN]))
        response = _redirect("/signin")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    def page(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
        return _html(_page(title, body, request[_MEMBER], request[_CSRF]), status)

    async def index(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disasters = await store(scope.disasters)
        items = "".join(f'<li><a href="/d/{quote(d.disaster_id, safe="")}">{_e(d.name)}</a>（発災 '
                        f"{_e(_when(d.occurred_at))}{'・終了' if d.closed_at else ''}）</li>" for d in disasters)
        return page(request, "災害", f"<section><h2>災害</h2><ul id=\"disasters\">{items or '<li>なし</li>'}</ul>"
                                     "</section>")

    async def ledger(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disaster_id = request.match_info["disaster"]
        form = {k: v for k, v in request.query.items() if isinstance(v, str)}
        criteria = ledger_search(form)

        def render() -> str:
            return _search_html(scope.disaster(disaster_id), form, criteria, scope)

        return page(request, "被災者台帳", await store(render))

    async def household(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disaster_id, code, number = (request.match_info[k] for k in ("disaster", "municipality", "household"))
        h = await store(lambda: scope.household(disaster_id, code, number))
        return page(request, "世帯", _household_html(h, request[_CSRF], "saved" in request.query))

    async def save_items(request: web.Request) -> web.StreamResponse:
        scope: StaffScope = request[_SCOPE]
        disaster_id, code, resident = (request.match_info[k] for k in ("disaster", "municipality", "resident"))
        form = {k: v for k, v in request[_FORM].items() if isinstance(v, str)}
        number = await store(lambda: scope.set_items(disaster_id, code, resident, form))
        return _redirect(f"{_household_url(disaster_id, code, number)}?saved=1")

    async def survey(request: web.Request) -> web.StreamResponse:
        scope: StaffScope = request[_SCOPE]
        disaster_id, code, dwelling = (request.match_info[k] for k in ("disaster", "municipality", "dwelling"))
        form = request[_FORM]
        level, ratio, reason = (_form_text(form, n).strip() or None for n in ("level", "loss_ratio", "reason"))
        await store(lambda: scope.survey(disaster_id, code, dwelling, level=level, loss_ratio=ratio, reason=reason,
                                         surveyed_on=None))
        return _redirect(f"{_household_url(disaster_id, code, _form_text(form, 'household'))}?saved=1")

    async def pay(request: web.Request) -> web.StreamResponse:
        scope: StaffScope = request[_SCOPE]
        disaster_id, code, number = (request.match_info[k] for k in ("disaster", "municipality", "household"))
        form = request[_FORM]
        amount_text = _form_text(form, "amount").strip().replace(",", "")
        try:
            amount = int(amount_text)
        except ValueError:
            raise InvalidArgumentError("amount", f"must be a whole number of yen, got {amount_text!r}") from None
        try:
            paid_on = dt.date.fromisoformat(_form_text(form, "paid_on").strip())
        except ValueError:
            raise InvalidArgumentError("paid_on", "choose the day paid (YYYY-MM-DD)") from None
        await store(lambda: scope.pay(disaster_id, code, number, procedure=_form_text(form, "procedure"),
                                      amount=amount, paid_on=paid_on, reference=_form_text(form, "reference")))
        return _redirect(f"{_household_url(disaster_id, code, number)}?saved=1")

    async def extract_pdf(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disaster_id, code, number = (request.match_info[k] for k in ("disaster", "municipality", "household"))

        def render() -> bytes:
            h = scope.household(disaster_id, code, number, action="staff.household.extract")
            return extract(h, scope.member, clock())

        pdf = await store(render)
        return web.Response(body=pdf, content_type="application/pdf",
                            headers={"Content-Disposition": f'inline; filename="ledger-{quote(number)}.pdf"'})

    def points(scope: StaffScope, disaster_id: str) -> list[tuple[float, float, DamageLevel | None, str]]:
        return [(d.longitude, d.latitude, level, d.address) for d, level in scope.dwellings(disaster_id)]

    async def area_page(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disaster_id = request.match_info["disaster"]

        def render() -> str:
            disaster = scope.disaster(disaster_id)
            return (f"<section><h2>{_e(disaster.name)}：住家の地図</h2>{_map_svg(points(scope, disaster_id))}"
                    f"</section>{_area_form(disaster_id, request[_CSRF])}")

        return page(request, "区域の登録", await store(render))

    def area_of(form: MultiDictProxy[Any]) -> tuple[str, Any, DamageLevel, bool]:
        upload = form.get("geojson")
        if isinstance(upload, web.FileField):
            raw = upload.file.read(MAX_GEOJSON_BYTES + 1)
            if len(raw) > MAX_GEOJSON_BYTES:
                raise InvalidArgumentError("geojson", f"the file is over {MAX_GEOJSON_BYTES // 1024 // 1024} MiB")
            text = raw.decode("utf-8", "replace")
        else:
            text = _form_text(form, "geojson")
        if not text.strip():
            raise InvalidArgumentError("geojson", "choose a GeoJSON file of the area")
        try:
            level = DamageLevel(_form_text(form, "level"))
        except ValueError:
            raise InvalidArgumentError("level", "choose a damage level") from None
        return text, parse_area(text), level, _form_text(form, "overwrite") == "1"

    async def area_preview(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disaster_id = request.match_info["disaster"]
        text, area, level, overwrite = area_of(request[_FORM])

        def render() -> str:
            disaster = scope.disaster(disaster_id)
            preview = scope.preview_area(disaster_id, area, level, overwrite)
            svg = _map_svg(points(scope, disaster_id), _rings(area))
            return _preview_html(disaster, preview, text, _form_text(request[_FORM], "reason"), request[_CSRF], svg)

        return page(request, "区域の確認", await store(render))

    async def area_apply(request: web.Request) -> web.Response:
        scope: StaffScope = request[_SCOPE]
        disaster_id = request.match_info["disaster"]
        form = request[_FORM]
        _, area, level, overwrite = area_of(form)
        reason = _form_text(form, "reason").strip() or None
        applied = await store(lambda: scope.apply_area(disaster_id, area, level, overwrite, reason))
        changed = ", ".join(f"{k}: {n}" for k, n in applied.changed_from.items()) or "なし"
        back = f'<p><a href="/d/{quote(disaster_id, safe="")}/area">地図に戻る</a></p>'
        return page(request, "区域を登録しました", f'<section><p id="applied" class="ok">区域を登録しました：'
                                              f'<b id="applied-changes">{applied.preview.changes}</b> 件の住家を'
                                              f"{_e(level.japanese)}にしました（変更前 {_e(changed)}）。個別調査済みで"
                                              f"そのままの住家 {applied.kept_surveyed}。</p>{back}</section>")

    async def applications(request: web.Request) -> web.Response:
        scope = request[_SCOPE]
        disaster_id = request.match_info["disaster"]

        def render() -> str:
            return _applications_html(scope.disaster(disaster_id), scope.member.municipality_code,
                                      scope.applications(disaster_id), request[_CSRF])

        return page(request, "オンライン申請", await store(render))

    async def decide(request: web.Request) -> web.Response:
        scope = request[_SCOPE]
        disaster_id, application_id = request.match_info["disaster"], request.match_info["application"]
        form = request[_FORM]
        decision = _form_text(form, "decision")
        if decision not in ("accept", "reject"):
            raise InvalidArgumentError("decision", "accept or reject")
        reason = _form_text(form, "reason").strip() or None
        await store(lambda: scope.decide(disaster_id, application_id, decision == "accept", reason))
        return _redirect(f"/d/{quote(disaster_id, safe='')}/applications")

    async def shutdown(_app: web.Application) -> None:
        pool.shutdown(wait=True)

    app = web.Application(middlewares=[headers, session], client_max_size=MAX_GEOJSON_BYTES + 64 * 1024)
    app.on_cleanup.append(shutdown)
    app[_STORE] = store
    app.add_routes([
        web.get("/signin", sign_in_page), web.post("/signin", sign_in), web.post("/signout", sign_out),
        web.get("/", index), web.get("/d/{disaster}", ledger),
        web.get("/d/{disaster}/m/{municipality}/h/{household}", household),
        web.get("/d/{disaster}/m/{municipality}/h/{household}/extract.pdf", extract_pdf),
        web.post("/d/{disaster}/m/{municipality}/h/{household}/payments", pay),
        web.post("/d/{disaster}/m/{municipality}/r/{resident}/items", save_items),
        web.post("/d/{disaster}/m/{municipality}/w/{dwelling}/survey", survey),
        web.get("/d/{disaster}/area", area_page), web.post("/d/{disaster}/area/preview", area_preview),
        web.post("/d/{disaster}/area/apply", area_apply),
        web.get("/d/{disaster}/applications", applications),
        web.post("/d/{disaster}/applications/{application}/decide", decide),
        *routes,
    ])
    return app

