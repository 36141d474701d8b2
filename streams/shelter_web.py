"""The staff pages of the shelters (server-rendered, no script), on the staff app of streams.staff_web (its sign-in,
sessions, CSRF check and error answers): the municipality's shelters with the capacity by day and by night staff
enter (the open data publishes none); per disaster, each shelter open or closed with the live headcount and the
occupancy against the capacity of the period now, open and close buttons, and a map: the shelters as points on
an inline SVG drawn from their coordinates (no tiles), an open one sized by its headcount and coloured by its
occupancy.

A thin shell: a handler makes the signed-in member's sinks.shelter_scope.ShelterScope (`scope_of`) and nothing else
of the stores, so the shelters are always the member's municipality's: another's shelter by URL is 404."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from urllib.parse import quote

from aiohttp import web

from domain.disasters import Disaster
from domain.shelters import Period, ShelterKind
from domain.staff_accounts import StaffMember
from sinks.shelter_scope import BoardRow, ShelterScope
from sinks.shelters import ShelterEntry
from streams.staff_web import _e, _redirect, _when, csrf_field_of, form_of, in_store, member_of, staff_page

# The map's colours by occupancy (headcount / capacity), the fullest red; an open shelter of unknown capacity,
# and a shelter not open.
OCCUPANCY_COLOURS: Mapping[str, str] = {"over": "#b2182b", "high": "#ef8a62", "some": "#67a9cf", "low": "#2166ac",
                                        "unknown": "#7b3294", "not-open": "#bababa"}
OCCUPANCY_NAMES: Mapping[str, str] = {
    "over": "満員（90%以上）", "high": "混雑（60〜90%）", "some": "余裕あり（30〜60%）", "low": "空きあり（30%未満）",
    "unknown": "収容人数未入力", "not-open": "未開設・閉鎖"}
_MAP_WIDTH, _MAP_HEIGHT = 760, 520
_KINDS = {ShelterKind.DESIGNATED_SHELTER: "指定避難所", ShelterKind.EMERGENCY_SITE: "指定緊急避難場所"}
_PERIODS = {Period.DAY: "昼間", Period.NIGHT: "夜間"}


def occupancy_band(row: BoardRow) -> str:
    """Which colour of OCCUPANCY_COLOURS a shelter is drawn in."""
    if row.occupancy is None:
        return "not-open"
    ratio = row.occupancy.ratio
    if ratio is None:
        return "unknown"
    return "over" if ratio >= 0.9 else "high" if ratio >= 0.6 else "some" if ratio >= 0.3 else "low"


def _board_url(disaster_id: str) -> str:
    return f"/d/{quote(disaster_id, safe='')}/shelters"


def _map_svg(rows: list[BoardRow]) -> str:
    """The shelters on an equirectangular projection fitted to them (longitude scaled by the cosine of the middle
    latitude); an open shelter's radius grows with the square root of its headcount (the area with the people)."""
    if not rows:
        return "<p>避難所が登録されていません（`bcl shelter import`）。</p>"
    lons = [r.entry.shelter.longitude for r in rows]
    lats = [r.entry.shelter.latitude for r in rows]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    scale_x = math.cos(math.radians((south + north) / 2))
    span = max((east - west) * scale_x, north - south, 1e-6)
    unit = min(_MAP_WIDTH, _MAP_HEIGHT) * 0.88 / span
    circles = ""
    # The closed ones first, so that the open ones are drawn on top.
    for row in sorted(rows, key=lambda r: r.occupancy is not None):
        s = row.entry.shelter
        x, y = 30 + (s.longitude - west) * scale_x * unit, _MAP_HEIGHT - 30 - (s.latitude - south) * unit
        band = occupancy_band(row)
        count = row.occupancy.headcount if row.occupancy else 0
        radius = 3.0 if row.occupancy is None else 5 + 2.5 * math.sqrt(count)
        title = f"{s.name}：{count}人" if row.occupancy else f"{s.name}（未開設）"
        circles += (f'<circle class="shelter" id="point-{_e(s.shelter_id)}" cx="{x:.1f}" cy="{y:.1f}" '
                    f'r="{min(radius, 40):.1f}" fill="{OCCUPANCY_COLOURS[band]}" fill-opacity="0.8" '
                    f'data-occupancy="{band}" data-headcount="{count}"><title>{_e(title)}</title></circle>')
    legend = "".join(f'<span><svg width="10" height="10"><rect width="10" height="10" fill="{colour}"/></svg> '
                     f"{_e(OCCUPANCY_NAMES[band])}</span>" for band, colour in OCCUPANCY_COLOURS.items())
    return (f'<svg id="shelter-map" xmlns="http://www.w3.org/2000/svg" width="{_MAP_WIDTH}" height="{_MAP_HEIGHT}" '
            f'viewBox="0 0 {_MAP_WIDTH} {_MAP_HEIGHT}" role="img" aria-label="避難所の地図">{circles}</svg>'
            f'<p class="legend">{legend}</p>')


def _capacity(entry: ShelterEntry) -> str:
    if entry.capacity is not None:
        return f"昼 {entry.capacity.day}・夜 {entry.capacity.night}"
    published = entry.shelter.published_capacity
    return "未入力" if published is None else f"未入力（公開値 {published}）"


def _board_html(disaster: Disaster, rows: list[BoardRow], csrf_field: str) -> str:
    d = quote(disaster.disaster_id, safe="")
    opened = [r for r in rows if r.is_open]
    headcount = sum(r.occupancy.headcount for r in opened if r.occupancy)
    period = _PERIODS[opened[0].occupancy.period] if opened and opened[0].occupancy else ""
    lines = ""
    for r in rows:
        s = r.entry.shelter
        sid = quote(s.shelter_id, safe="")
        if r.opening is not None and r.occupancy is not None:
            o = r.occupancy
            state = f"開設中（{_e(_when(r.opening.opened_at))}〜）"
            count, capacity = str(o.headcount), "—" if o.capacity is None else str(o.capacity)
            ratio = "—" if o.ratio is None else f"{o.ratio:.0%}"
            button = (f'<form method="post" action="/d/{d}/shelters/{sid}/close">{csrf_field}'
                      f'<button id="close-{_e(s.shelter_id)}" type="submit">閉鎖（全員退所）</button></form>')
        else:
            closed_at = r.opening.closed_at if r.opening else None
            state = f"閉鎖（{_e(_when(closed_at))}）" if closed_at is not None else "未開設"
            count, capacity, ratio = "", "", ""
            # A closed shelter can be opened again (a new opening period; its earlier stays are kept).
            button = (f'<form method="post" action="/d/{d}/shelters/{sid}/open">{csrf_field}'
                      f'<button id="open-{_e(s.shelter_id)}" type="submit">'
                      f'{"再開設" if closed_at is not None else "開設"}</button></form>')
        lines += (f'<tr id="shelter-{_e(s.shelter_id)}"><td>{_e(s.name)}</td><td>{_e(_KINDS[s.kind])}</td>'
                  f'<td class="state">{state}</td><td class="headcount">{count}</td><td class="capacity">'
                  f'{capacity}</td><td class="occupancy">{ratio}</td><td>{button}</td></tr>')
    return f"""<section><h2>{_e(disaster.name)}：避難所</h2>
<p class="counts"><span>開設中 <b id="open-count">{len(opened)}</b> か所</span>
<span>避難者 <b id="total-headcount">{headcount}</b> 人</span><span>{_e(period)}の収容人数で計算</span></p>
<p><a href="/shelters">収容人数の入力</a></p>{_map_svg(rows)}</section>
<section><table id="shelters"><tr><th>避難所</th><th>種別</th><th>状態</th><th>避難者数</th><th>収容人数</th>
<th>使用率</th><th></th></tr>{lines}</table></section>"""


def _entries_html(entries: list[ShelterEntry], disasters: list[Disaster], csrf_field: str, saved: bool) -> str:
    links = "".join(f'<li><a href="{_e(_board_url(d.disaster_id))}">{_e(d.name)}</a>（発災 {_e(_when(d.occurred_at))}'
                    f"{'・終了' if d.closed_at else ''}）</li>" for d in disasters)
    rows = ""
    for e in entries:
        s = e.shelter
        action = f"/shelters/{quote(s.shelter_id, safe='')}/capacity"
        day, night = ("", "") if e.capacity is None else (str(e.capacity.day), str(e.capacity.night))
        rows += (f'<tr id="entry-{_e(s.shelter_id)}"><td>{_e(s.name)}</td><td>{_e(s.address)}</td>'
                 f'<td>{_e(_KINDS[s.kind])}</td><td class="capacity">{_e(_capacity(e))}</td><td>'
                 f'<form method="post" action="{_e(action)}">{csrf_field}'
                 f'<label>昼 <input id="day-{_e(s.shelter_id)}" name="day" type="text" size="5" value="{day}"></label>'
                 f'<label>夜 <input id="night-{_e(s.shelter_id)}" name="night" type="text" size="5" value="{night}">'
                 f'</label><button id="capacity-{_e(s.shelter_id)}" type="submit">保存</button></form></td></tr>')
    notice = '<p id="saved" class="ok">保存しました。</p>' if saved else ""
    return f"""<section><h2>災害ごとの避難所（開設・閉鎖、避難者数、地図）</h2><ul id="shelter-disasters">
{links or '<li>なし</li>'}</ul></section>
<section><h2>避難所と収容人数</h2>{notice}<p>収容人数（昼間・夜間）はオープンデータにないため職員が入力します。</p>
<table id="entries"><tr><th>避難所</th><th>住所</th><th>種別</th><th>収容人数</th><th>入力</th></tr>{rows}</table>
</section>"""


def shelter_routes(scope_of: Callable[[StaffMember], ShelterScope]) -> list[web.RouteDef]:
    """The shelters' routes for streams.staff_web.make_app."""

    def scope(request: web.Request) -> ShelterScope:
        return scope_of(member_of(request))

    async def entries(request: web.Request) -> web.Response:
        s = scope(request)

        def render() -> str:
            return _entries_html(s.entries(), s.disasters(), csrf_field_of(request), "saved" in request.query)

        return staff_page(request, "避難所", await in_store(request, render))

    async def set_capacity(request: web.Request) -> web.StreamResponse:
        s, form = scope(request), form_of(request)
        await in_store(request, lambda: s.set_capacity(request.match_info["shelter"], form.get("day", ""),
                                                       form.get("night", "")))
        return _redirect("/shelters?saved=1")

    async def board(request: web.Request) -> web.Response:
        s, disaster_id = scope(request), request.match_info["disaster"]

        def render() -> str:
            return _board_html(s.disaster(disaster_id), s.board(disaster_id), csrf_field_of(request))

        return staff_page(request, "避難所", await in_store(request, render))

    async def open_shelter(request: web.Request) -> web.StreamResponse:
        s, disaster_id = scope(request), request.match_info["disaster"]
        await in_store(request, lambda: s.open(disaster_id, request.match_info["shelter"]))
        return _redirect(_board_url(disaster_id))

    async def close_shelter(request: web.Request) -> web.StreamResponse:
        s, disaster_id = scope(request), request.match_info["disaster"]
        await in_store(request, lambda: s.close(disaster_id, request.match_info["shelter"]))
        return _redirect(_board_url(disaster_id))

    return [web.get("/shelters", entries), web.post("/shelters/{shelter}/capacity", set_capacity),
            web.get("/d/{disaster}/shelters", board), web.post("/d/{disaster}/shelters/{shelter}/open", open_shelter),
            web.post("/d/{disaster}/shelters/{shelter}/close", close_shelter)]
