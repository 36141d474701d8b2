"""The staff pages of the 避難行動要支援者名簿 and the 個別避難計画 (server-rendered, no script), on the staff app of
streams.staff_web (its sign-in, sessions, CSRF check and error answers): the search and extraction by town,
criterion, consent and name, counts first; the extraction as CSV and as the printable PDF (downloads); the consent
tasks; a listed person's page (the list's items, the consent recorded or withdrawn with its date, the telephone
number, the roster history, the open tasks, the plan); the plan's form and its PDF.

A thin shell: a handler makes the signed-in member's sinks.roster_scope.RosterScope (`scope_of`) and nothing else
of the stores, so the municipality is always the member's, whatever the URL says: a resident code of another
municipality is not on the list asked, 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from domain.evacuation_plan import MAX_SUPPORTERS, Supporter
from domain.evacuation_roster import CRITERION_NAMES, TASK_CAUSE_NAMES, ConsentDecision, Criterion, consent_label
from domain.municipalities import municipality
from domain.roster_extraction import RosterFilter, roster_filter
from domain.staff_accounts import StaffMember
from sinks.evacuation_roster import SEX_LABELS, RosterPerson
from sinks.roster_pdf import plan_pdf, roster_pdf
from sinks.roster_scope import RosterPage, RosterScope
from streams.staff_web import (
    _e,
    _options,
    _redirect,
    _when,
    csrf_field_of,
    form_of,
    in_store,
    member_of,
    query_of,
    staff_page,
)

Clock = Callable[[], dt.datetime]
_CRITERION_OPTIONS = [("", "（すべて）"), *((c.value, CRITERION_NAMES[c]) for c in Criterion)]
_CONSENT_OPTIONS = [("", "（すべて）"), ("given", "同意あり"), ("not-given", "同意なし（未確認・不同意・撤回）")]
_DECISION_OPTIONS = [(d.value, d.japanese) for d in ConsentDecision]
_CHANGES = {"LISTED": "登載", "REASONS": "事由の変更", "UNLISTED": "要件に該当しなくなった", "REMOVED": "消除"}


def _person_url(resident_code: str) -> str:
    return f"/roster/p/{quote(resident_code, safe='')}"


def _consent(person: RosterPerson) -> str:
    return consent_label(person.consent) + (f"（{person.consent_on.isoformat()}）" if person.consent_on else "")


def _search_html(municipality_code: str, form: dict[str, str], wanted: RosterFilter, people: list[RosterPerson]
                 ) -> str:
    by_reason = "".join(f"<span>{_e(CRITERION_NAMES[c])}: {n}</span>" for c in Criterion
                        if (n := sum(c in p.reasons for p in people)))
    consented = sum(p.consent is ConsentDecision.GIVEN for p in people)
    query = urlencode({k: v for k, v in form.items() if k in ("town", "criterion", "consent", "name") and v})
    suffix = f"?{query}" if query else ""
    rows = "".join(
        f'<tr><td><a href="{_e(_person_url(p.resident_code))}">{_e(p.name)}</a></td><td>{_e(p.name_kana)}</td>'
        f"<td>{_e(p.birth_date.isoformat())}</td><td>{_e(p.address)}</td><td>{_e(p.reason_text)}</td>"
        f'<td class="consent">{_e(_consent(p))}</td></tr>' for p in people)
    return f"""<section><h2>避難行動要支援者名簿（{_e(municipality(municipality_code).full_name)}）</h2>
<p><a id="tasks" href="/roster/tasks">同意確認のタスク</a></p>
<form method="get" action="/roster">
<label>町名 <input id="town" name="town" type="text" value="{_e(form.get('town', ''))}"></label>
<label>事由 <select id="criterion" name="criterion">{_options(_CRITERION_OPTIONS, form.get('criterion', ''))}
</select></label>
<label>平常時提供の同意 <select id="consent" name="consent">{_options(_CONSENT_OPTIONS, form.get('consent', ''))}
</select></label>
<label>氏名・ふりがな <input id="name" name="name" type="text" value="{_e(form.get('name', ''))}"></label>
<button id="search" type="submit">抽出</button></form></section>
<section class="counts"><h2>件数（{_e(wanted.selection)}）</h2><p><span>該当 <b id="matches">{len(people)}</b> 人</span>
<span>同意あり <b id="consented">{consented}</b></span></p><p>{by_reason}</p>
<p><a id="csv" href="/roster/export.csv{_e(suffix)}" download>CSVで保存</a>・
<a id="pdf" href="/roster/list.pdf{_e(suffix)}">印刷用PDF</a></p></section>
<section><table id="roster"><tr><th>氏名</th><th>ふりがな</th><th>生年月日</th><th>住所</th>
<th>避難支援等を必要とする事由</th><th>平常時提供の同意</th></tr>{rows}</table></section>"""


def _tasks_html(scope: RosterScope) -> str:
    rows = "".join(f'<tr><td><a href="{_e(_person_url(t.resident_code))}">{_e(t.name)}</a></td>'
                   f"<td>{_e(TASK_CAUSE_NAMES[t.cause])}</td><td>{_e(t.created_on.isoformat())}</td></tr>"
                   for t in scope.tasks())
    return (f'<section><h2>同意確認のタスク</h2><p>新たに名簿に載った事由のある人に、平常時の名簿情報の提供への同意を'
            f'確認してください（同意・不同意を記録すると閉じます）。</p><table id="task-list"><tr><th>氏名</th>'
            f"<th>理由</th><th>作成日</th></tr>{rows or '<tr><td colspan=3>なし</td></tr>'}</table></section>")


def _supporter_rows(supporters: tuple[Supporter, ...]) -> str:
    rows = ""
    for n in range(1, MAX_SUPPORTERS + 1):
        s = supporters[n - 1] if n <= len(supporters) else Supporter("", "", "")
        rows += (f'<tr><td><input id="supporter_name_{n}" name="supporter_name_{n}" type="text" '
                 f'value="{_e(s.name)}"></td><td><input id="supporter_relation_{n}" name="supporter_relation_{n}" '
                 f'type="text" value="{_e(s.relation)}"></td><td><input id="supporter_phone_{n}" '
                 f'name="supporter_phone_{n}" type="text" value="{_e(s.phone)}"></td></tr>')
    return rows


def _person_html(page: RosterPage, scope: RosterScope, csrf_field: str, saved: bool) -> str:
    p = page.person
    url = _person_url(p.resident_code)
    notice = '<p id="saved" class="ok">保存しました。</p>' if saved else ""
    items = "".join(f"<tr><th>{_e(k)}</th><td id=\"{i}\">{_e(v)}</td></tr>" for i, k, v in (
        ("p-name", "氏名", p.name), ("p-kana", "ふりがな", p.name_kana),
        ("p-birth", "生年月日", p.birth_date.isoformat()), ("p-sex", "性別", SEX_LABELS[p.sex]),
        ("p-address", "住所", p.address), ("p-phone", "電話番号", p.phone or "未登録"),
        ("p-reason", "避難支援等を必要とする事由", p.reason_text),
        ("p-since", "名簿登載日", p.listed_since.isoformat()), ("p-consent", "平常時提供の同意", _consent(p))))
    history = "".join(f"<tr><td>{_e(c.day.isoformat())}</td><td>{_e(_CHANGES.get(c.change, c.change))}</td>"
                      f"<td>{_e('・'.join(CRITERION_NAMES[r] for r in c.reasons))}</td>"
                      f"<td>{_e(c.detail or '')}</td></tr>"
                      for c in page.history)
    tasks = "".join(f"<li>{_e(TASK_CAUSE_NAMES[t.cause])}（{_e(t.created_on.isoformat())}）</li>" for t in page.tasks)
    stored = page.plan
    plan = stored.plan if stored else None
    shelters = [("", "（選択）")] + [(s.shelter_id, f"{s.name}（{s.address}）") for s in scope.shelters()]
    plan_state = (f'<p>最終更新 {_e(_when(stored.updated_at))} {_e(stored.updated_by)}・'
                  f'<a id="plan-pdf" href="{_e(url)}/plan.pdf">個別避難計画（PDF）</a></p>' if stored else
                  '<p id="no-plan">個別避難計画はまだありません。</p>')
    return f"""<section><h2>{_e(p.name)}</h2>{notice}<table id="items">{items}</table></section>
<section><h2>平常時の名簿情報の提供への同意</h2><ul id="person-tasks">{tasks or '<li>未処理のタスクなし</li>'}</ul>
<form method="post" action="{_e(url)}/consent">{csrf_field}
<label>判断 <select id="decision" name="decision">{_options(_DECISION_OPTIONS, '')}</select></label>
<label>日付 <input id="decided_on" name="on" type="date"></label>
<button id="record-consent" type="submit">同意の判断を記録</button></form></section>
<section><h2>電話番号</h2><form method="post" action="{_e(url)}/phone">{csrf_field}
<input id="phone" name="phone" type="text" value="{_e(p.phone or '')}" maxlength="20">
<button id="save-phone" type="submit">保存</button></form></section>
<section><h2>名簿の履歴</h2><table id="history"><tr><th>日付</th><th>変更</th><th>事由</th><th>備考</th></tr>
{history}</table></section>
<section><h2>個別避難計画</h2>{plan_state}<form method="post" action="{_e(url)}/plan">{csrf_field}
<table id="supporters"><tr><th>避難支援等実施者</th><th>続柄・関係</th><th>電話番号</th></tr>
{_supporter_rows(plan.supporters if plan else ())}</table>
<p><label>避難先 <select id="shelter" name="shelter">{_options(shelters, plan.shelter.shelter_id if plan else '')}
</select></label></p>
<p><label for="route">避難経路</label><textarea id="route" name="route">{_e(plan.route if plan else '')}</textarea></p>
<p><label for="needs">支援に必要な配慮</label><textarea id="needs" name="needs">{_e(plan.needs if plan else '')}
</textarea></p><button id="save-plan" type="submit">計画を保存</button></form></section>"""


def roster_routes(scope_of: Callable[[StaffMember], RosterScope], *, mincho_font: Path, gothic_font: Path,
                  clock: Clock) -> list[web.RouteDef]:
    """The roster's routes for streams.staff_web.make_app."""

    def scope(request: web.Request) -> RosterScope:
        return scope_of(member_of(request))

    async def search(request: web.Request) -> web.Response:
        s, form = scope(request), query_of(request)
        wanted = roster_filter(form)
        return staff_page(request, "避難行動要支援者名簿",
                          await in_store(request, lambda: _search_html(s.member.municipality_code, form, wanted,
                                                                     s.people(wanted))))

    async def export_csv(request: web.Request) -> web.Response:
        s = scope(request)
        text = await in_store(request, lambda: s.csv(roster_filter(query_of(request))))
        name = f"roster-{s.member.municipality_code}.csv"
        # UTF-8 with a BOM: the spreadsheet staff open it in reads it as UTF-8, not Shift_JIS.
        return web.Response(body=("\ufeff" + text).encode("utf-8"), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def list_pdf(request: web.Request) -> web.Response:
        s = scope(request)
        wanted = roster_filter(query_of(request))

        def render() -> bytes:
            people = s.people(wanted, "staff.roster.pdf")
            return roster_pdf(people, municipality_name=municipality(s.member.municipality_code).full_name,
                              selection=wanted.selection, printed_by=s.member.login, now=clock(),
                              mincho_font=mincho_font, gothic_font=gothic_font)

        pdf = await in_store(request, render)
        return web.Response(body=pdf, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="roster-{s.member.municipality_code}.pdf"'})

    async def tasks(request: web.Request) -> web.Response:
        s = scope(request)
        return staff_page(request, "同意確認のタスク", await in_store(request, lambda: _tasks_html(s)))

    async def person(request: web.Request) -> web.Response:
        s, resident = scope(request), request.match_info["resident"]

        def render() -> str:
            return _person_html(s.page(resident), s, csrf_field_of(request), "saved" in request.query)

        return staff_page(request, "避難行動要支援者", await in_store(request, render))

    async def consent(request: web.Request) -> web.StreamResponse:
        s, resident, form = scope(request), request.match_info["resident"], form_of(request)
        await in_store(request, lambda: s.record_consent(resident, form.get("decision", ""), form.get("on", "")))
        return _redirect(f"{_person_url(resident)}?saved=1")

    async def phone(request: web.Request) -> web.StreamResponse:
        s, resident, form = scope(request), request.match_info["resident"], form_of(request)
        await in_store(request, lambda: s.set_phone(resident, form.get("phone", "")))
        return _redirect(f"{_person_url(resident)}?saved=1")

    async def plan(request: web.Request) -> web.StreamResponse:
        s, resident, form = scope(request), request.match_info["resident"], form_of(request)
        await in_store(request, lambda: s.set_plan(resident, form))
        return _redirect(f"{_person_url(resident)}?saved=1")

    async def plan_download(request: web.Request) -> web.Response:
        s, resident = scope(request), request.match_info["resident"]

        def render() -> bytes | None:
            listed, stored = s.plan_of(resident)
            if stored is None:
                return None
            return plan_pdf(listed, stored, municipality_name=municipality(s.member.municipality_code).full_name,
                            printed_by=s.member.login, now=clock(), mincho_font=mincho_font, gothic_font=gothic_font)

        pdf = await in_store(request, render)
        if pdf is None:
            raise web.HTTPNotFound(text="no plan yet")
        return web.Response(body=pdf, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="plan-{quote(resident)}.pdf"'})

    return [web.get("/roster", search), web.get("/roster/export.csv", export_csv),
            web.get("/roster/list.pdf", list_pdf), web.get("/roster/tasks", tasks),
            web.get("/roster/p/{resident}", person), web.post("/roster/p/{resident}/consent", consent),
            web.post("/roster/p/{resident}/phone", phone), web.post("/roster/p/{resident}/plan", plan),
            web.get("/roster/p/{resident}/plan.pdf", plan_download)]
