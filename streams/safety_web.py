"""The staff page of who is unaccounted for in a disaster (server-rendered, no script), on the staff app of
streams.staff_web (its sign-in, sessions, CSRF check and error answers): the counts first, then the names, paged
and filtered by whereabouts, category and town (part of the address), each unaccounted-for person with a form to
record a safety confirmation (status, how it was learnt, a note); and the 個別避難計画 to follow (`/plans`: listed
people of damaged dwellings not seen at any shelter, each linked to their page of the roster with the plan).

A thin shell: a handler makes the signed-in member's sinks.safety_scope.SafetyScope (`scope_of`) and nothing else
of the stores, so the names are always the member's municipality's: another's disaster or resident by URL is 404."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

from aiohttp import web

from domain.disasters import Disaster
from domain.safety import Category, ConfirmationMethod, SafetyStatus, Whereabouts
from domain.staff_accounts import StaffMember
from sinks.safety_scope import SafetyScope
from sinks.unaccounted import NamesPage, NamesQuery, PlanToFollow, SafetyCounts, names_query
from streams.staff_web import _e, _redirect, _when, csrf_field_of, form_of, in_store, member_of, query_of, staff_page

_WHEREABOUTS = {Whereabouts.UNACCOUNTED: "所在不明（未確認）", Whereabouts.SHELTERED: "自市町村の避難所に避難中",
                Whereabouts.SHELTERED_ELSEWHERE: "他市区町村の避難所に避難中", Whereabouts.CONFIRMED: "安否確認済み",
                Whereabouts.REGISTER: "住民票の異動（死亡・転出）"}
_CATEGORIES = (Category.DAMAGED_DWELLING, Category.LISTED)


def _view_url(disaster_id: str, query: NamesQuery | None = None, page: int | None = None) -> str:
    url = f"/d/{quote(disaster_id, safe='')}/safety"
    if query is None:
        return url
    values = {"whereabouts": "all" if query.whereabouts is None else query.whereabouts.value,
              "category": "" if query.category is None else query.category.value, "town": query.town,
              "page": str(query.page if page is None else page)}
    return f"{url}?{urlencode(values)}"


def _counts_html(c: SafetyCounts) -> str:
    by, confirmed = c.unaccounted_by_category, c.confirmed
    spans = (f'所在不明 <b id="count-unaccounted">{c.unaccounted}</b> 人',
             f'（被災住家 <b id="count-damaged">{by["DAMAGED_DWELLING"]}</b>・要支援者 '
             f'<b id="count-listed">{by["LISTED"]}</b>）',
             f'対象 <b id="count-looked-for">{c.looked_for}</b> 人',
             f'避難中 <b id="count-sheltered">{c.sheltered}</b>・他市区町村で避難中 '
             f'<b id="count-elsewhere">{c.sheltered_elsewhere}</b>',
             f'安否確認済み 無事 <b id="count-safe">{confirmed["SAFE"]}</b>・負傷 {confirmed["INJURED"]}・死亡 '
             f'{confirmed["DECEASED"]}',
             f"住民票の異動 {c.register}",
             f'他市区町村からの避難者（当市町村の避難所） <b id="count-hosted">{c.hosted_from_elsewhere}</b>')
    return '<p class="counts" id="safety-counts">' + "".join(f"<span>{x}</span>" for x in spans) + "</p>"


def _filter_html(disaster_id: str, query: NamesQuery) -> str:
    def option(value: str, label: str, chosen: bool) -> str:
        return f'<option value="{_e(value)}"{" selected" if chosen else ""}>{_e(label)}</option>'

    states = option("all", "すべて", query.whereabouts is None) + "".join(
        option(w.value, label, query.whereabouts is w) for w, label in _WHEREABOUTS.items())
    categories = option("", "すべて", query.category is None) + "".join(
        option(c.value, c.japanese, query.category is c) for c in _CATEGORIES)
    return (f'<form method="get" action="{_e(_view_url(disaster_id))}" id="filter">'
            f'<label>状態 <select id="whereabouts" name="whereabouts">{states}</select></label> '
            f'<label>区分 <select id="category" name="category">{categories}</select></label> '
            f'<label>町名・住所 <input id="town" name="town" type="text" value="{_e(query.town)}"></label> '
            f'<button id="show" type="submit">表示</button></form>')


def _confirm_form(disaster_id: str, resident_code: str, csrf_field: str) -> str:
    action = f"/d/{quote(disaster_id, safe='')}/safety/{quote(resident_code, safe='')}/confirm"
    statuses = "".join(f'<option value="{s.value}">{_e(s.japanese)}</option>' for s in SafetyStatus)
    methods = "".join(f'<option value="{m.value}">{_e(m.japanese)}</option>' for m in ConfirmationMethod)
    rid = _e(resident_code)
    return (f'<form method="post" action="{_e(action)}">{csrf_field}'
            f'<select id="status-{rid}" name="status">{statuses}</select>'
            f'<select id="method-{rid}" name="method">{methods}</select>'
            f'<input id="note-{rid}" name="note" type="text" size="16" maxlength="200" placeholder="メモ">'
            f'<button id="confirm-{rid}" type="submit">安否確認を記録</button></form>')


def _names_html(disaster_id: str, page: NamesPage, query: NamesQuery, csrf_field: str) -> str:
    rows = ""
    for p in page.people:
        if p.whereabouts is Whereabouts.UNACCOUNTED:
            detail = _confirm_form(disaster_id, p.resident_code, csrf_field)
        elif p.shelter_id is not None:
            detail = f"{_e(p.shelter_id)}（{_e(_when(p.since))}〜）" if p.since else _e(p.shelter_id)
        elif p.confirmed is not None:
            how = p.method.japanese if p.method else ""
            at = _when(p.confirmed_at) if p.confirmed_at else ""
            detail = f"{_e(p.confirmed.japanese)}（{_e(how)}、{_e(at)}、{_e(p.confirmed_by or '')}）"
        else:
            detail = ""
        rows += (f'<tr id="person-{_e(p.resident_code)}"><td>{_e(p.name)}</td><td>{_e(p.name_kana)}</td>'
                 f'<td>{_e(p.address)}</td><td>{_e("・".join(c.japanese for c in p.categories))}</td>'
                 f'<td class="whereabouts">{_e(_WHEREABOUTS[p.whereabouts])}</td><td>{detail}</td></tr>')
    pager = ""
    if page.page > 0:
        pager += f'<a id="previous" href="{_e(_view_url(disaster_id, query, page.page - 1))}">前へ</a> '
    if page.page + 1 < page.pages:
        pager += f'<a id="next" href="{_e(_view_url(disaster_id, query, page.page + 1))}">次へ</a>'
    return (f'<p>該当 <b id="names-total">{page.total}</b> 人（{page.page + 1} / {page.pages} ページ）{pager}</p>'
            f'<table id="names"><tr><th>氏名</th><th>ふりがな</th><th>住所（発災時）</th><th>区分</th><th>状態</th>'
            f"<th>避難先・安否確認</th></tr>{rows}</table>")


def _view_html(disaster: Disaster, counts: SafetyCounts, page: NamesPage, query: NamesQuery, csrf_field: str,
               saved: bool) -> str:
    notice = '<p id="saved" class="ok">安否確認を記録しました。</p>' if saved else ""
    return (f"<section><h2>{_e(disaster.name)}：所在不明者（安否確認）</h2>{notice}{_counts_html(counts)}"
            "<p>被災住家（半壊以上）の居住者と避難行動要支援者のうち、いまどの避難所にも入所しておらず安否確認も"
            "ないかたが所在不明です。安否情報は本人の提供同意がある場合のみ、その提供先に回答します"
            "（`bcl safety inquiry`）。</p></section>"
            f'<p><a id="plans-link" href="{_e(_view_url(disaster.disaster_id))}/plans">個別避難計画の対象'
            "（被災住家の避難行動要支援者で所在不明のかた）</a></p>"
            f"<section>{_filter_html(disaster.disaster_id, query)}"
            f"{_names_html(disaster.disaster_id, page, query, csrf_field)}</section>")


def _plans_html(disaster: Disaster, to_follow: list[PlanToFollow]) -> str:
    rows = ""
    for t in to_follow:
        p, plan = t.person, None if t.plan is None else t.plan.plan
        route, needs = ("", "") if plan is None else (plan.route, plan.needs)
        supporters = "—" if plan is None else "<br>".join(
            f"{_e(s.name)}（{_e(s.relation)}） {_e(s.phone)}" for s in plan.supporters) or "—"
        where = "個別避難計画なし" if plan is None else f"{_e(plan.shelter.name)}（{_e(plan.shelter.shelter_id)}）"
        rows += (f'<tr id="plan-{_e(p.resident_code)}"><td><a href="/roster/p/{quote(p.resident_code, safe="")}">'
                 f"{_e(p.name)}</a></td><td>{_e(p.address)}</td><td>{supporters}</td><td>{where}</td>"
                 f"<td>{_e(route)}</td><td>{_e(needs)}</td></tr>")
    return (f"<section><h2>{_e(disaster.name)}：個別避難計画の対象</h2>"
            "<p>避難行動要支援者のうち、住家が半壊以上と調査され、いまどの避難所にも入所しておらず安否確認もないかた。"
            "氏名から名簿の個人ページ（個別避難計画とそのPDF）へ。</p>"
            f'<p>該当 <b id="plans-total">{len(to_follow)}</b> 人 '
            f'<a href="{_e(_view_url(disaster.disaster_id))}">所在不明者の一覧へ</a></p>'
            f'<table id="plans"><tr><th>氏名</th><th>住所（発災時）</th><th>避難支援者</th><th>避難先</th>'
            f"<th>避難経路</th><th>配慮事項</th></tr>{rows}</table></section>")


def _disasters_html(disasters: list[Disaster]) -> str:
    links = "".join(f'<li><a href="{_e(_view_url(d.disaster_id))}">{_e(d.name)}</a>（発災 {_e(_when(d.occurred_at))}'
                    f"{'・終了' if d.closed_at else ''}）</li>" for d in disasters)
    return (f'<section><h2>災害ごとの所在不明者（安否確認）</h2><ul id="safety-disasters">{links or "<li>なし</li>"}'
            "</ul></section>")


def safety_routes(scope_of: Callable[[StaffMember], SafetyScope]) -> list[web.RouteDef]:
    """The unaccounted-for view's routes for streams.staff_web.make_app."""

    def scope(request: web.Request) -> SafetyScope:
        return scope_of(member_of(request))

    async def disasters(request: web.Request) -> web.Response:
        s = scope(request)
        return staff_page(request, "安否確認", await in_store(request, lambda: _disasters_html(s.disasters())))

    async def view(request: web.Request) -> web.Response:
        s, disaster_id, values = scope(request), request.match_info["disaster"], query_of(request)
        query = names_query(values)

        def render() -> str:
            disaster = s.disaster(disaster_id)
            return _view_html(disaster, s.counts(disaster_id), s.people(disaster_id, query), query,
                              csrf_field_of(request), "saved" in values)

        return staff_page(request, "安否確認", await in_store(request, render))

    async def confirm(request: web.Request) -> web.StreamResponse:
        s, disaster_id, form = scope(request), request.match_info["disaster"], form_of(request)
        await in_store(request, lambda: s.confirm(disaster_id, request.match_info["resident"], form))
        return _redirect(_view_url(disaster_id) + "?saved=1")

    async def plans(request: web.Request) -> web.Response:
        s, disaster_id = scope(request), request.match_info["disaster"]
        return staff_page(request, "安否確認", await in_store(
            request, lambda: _plans_html(s.disaster(disaster_id), s.plans_to_follow(disaster_id))))

    return [web.get("/safety", disasters), web.get("/d/{disaster}/safety", view),
            web.get("/d/{disaster}/safety/plans", plans),
            web.post("/d/{disaster}/safety/{resident}/confirm", confirm)]
