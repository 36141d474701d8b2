"""A TrueType font loaded once and subset per document in microseconds-to-milliseconds.

General-purpose subsetters (fontTools, reportlab) re-read and re-build tables for every document;
for a 7.8 MB CJK font like IPAex Mincho that dominates the cost of a certificate. Here the font's
raw tables are parsed once; a subset for a document copies only the glyph records it uses
(renumbered 0..n-1, composite glyph references patched) into a fresh minimal TrueType file that a
PDF embeds as FontFile2 of a CIDFontType2 font with CIDs equal to the new glyph ids.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont, TTLibError

from certgen.errors import FontError

# Composite glyph flags (OpenType spec, 'glyf' table).
_ARG_1_AND_2_ARE_WORDS = 0x0001
_WE_HAVE_A_SCALE = 0x0008
_MORE_COMPONENTS = 0x0020
_WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
_WE_HAVE_A_TWO_BY_TWO = 0x0080

# Tables a PDF consumer (FreeType, pdf.js, Acrobat) needs from an embedded TrueType font; the
# hinting tables are copied whole because they are tiny and 'prep' may refer to 'cvt '.
_COPIED_TABLES = ("cvt ", "fpgm", "prep")


@dataclass(frozen=True)
class FontSubset:
    """One document's subset: the font file and how the document's text maps onto it."""

    data: bytes
    tag: str  # six upper-case letters, the PDF subset prefix (ABCDEF+IPAexMincho)
    new_gid: dict[int, int]  # original glyph id -> glyph id (= CID) in the subset
    advances: list[int]  # per new glyph id, advance width in 1/1000 em
    unicode_of: dict[int, str]  # new glyph id -> the text it stands for (ToUnicode)


class TrueTypeFont:
    """A TrueType font's metrics and glyph records, parsed once and shared by every document."""

    def __init__(self, data: bytes, name: str | None = None) -> None:
        try:
            font = TTFont(io.BytesIO(data), lazy=True)
            cmap = font.getBestCmap()
            glyph_ids = font.getReverseGlyphMap()
            tags = list(font.reader.keys())
            tables = {tag: font.reader[tag] for tag in tags}
            ps_name = font["name"].getDebugName(6) or "Font"
        except (TTLibError, KeyError, struct.error) as exc:
            raise FontError(f"cannot read the TrueType font: {exc}") from exc
        if "glyf" not in tables:
            raise FontError("the font has no TrueType outlines ('glyf' table); use a .ttf font")
        self.name = name or ps_name
        head = tables["head"]
        self.units_per_em: int = struct.unpack(">H", head[18:20])[0]
        self.bbox = struct.unpack(">hhhh", head[36:44])
        hhea = tables["hhea"]
        self.ascent, self.descent = struct.unpack(">hh", hhea[4:8])
        num_hmetrics = struct.unpack(">H", hhea[34:36])[0]
        self.num_glyphs: int = struct.unpack(">H", tables["maxp"][4:6])[0]
        hmtx = tables["hmtx"]
        advances = [struct.unpack_from(">H", hmtx, 4 * i)[0] for i in range(num_hmetrics)]
        advances += [advances[-1]] * (self.num_glyphs - num_hmetrics)  # trailing glyphs share the last width
        self._advance_units = advances
        long_loca = struct.unpack(">h", head[50:52])[0] == 1
        loca = tables["loca"]
        if long_loca:
            self._loca = struct.unpack(f">{self.num_glyphs + 1}I", loca[: 4 * (self.num_glyphs + 1)])
        else:
            short = struct.unpack(f">{self.num_glyphs + 1}H", loca[: 2 * (self.num_glyphs + 1)])
            self._loca = tuple(2 * o for o in short)
        self._glyf = tables["glyf"]
        self._tables = tables
        # char -> (glyph id, advance in 1/1000 em): what both layout and the PDF writer ask for.
        self._chars: dict[str, tuple[int, int]] = {}
        for code, glyph_name in cmap.items():
            gid = glyph_ids[glyph_name]
            self._chars[chr(code)] = (gid, round(advances[gid] * 1000 / self.units_per_em))
        self._components: dict[int, tuple[int, ...]] = {}

    @classmethod
    def from_file(cls, path: Path) -> TrueTypeFont:
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise FontError(f"cannot read the font file {path}: {exc} (install fonts-ipaexfont)") from exc

    # -- metrics ---------------------------------------------------------------------------------

    def glyph(self, char: str) -> tuple[int, int]:
        """(glyph id, advance width in 1/1000 em) of one character."""
        try:
            return self._chars[char]
        except KeyError:
            raise FontError(f"the font {self.name} has no glyph for {char!r} (U+{ord(char):04X})") from None

    def width(self, text: str, size: float) -> float:
        """Advance width of text at a font size, in the same unit as size."""
        chars = self._chars
        total = 0
        for ch in text:
            entry = chars.get(ch)
            if entry is None:
                self.glyph(ch)  # raises the explanatory error
            else:
                total += entry[1]
        return total * size / 1000

    # -- subsetting ------------------------------------------------------------------------------

    def _glyph_record(self, gid: int) -> bytes:
        return self._glyf[self._loca[gid] : self._loca[gid + 1]]

    def _component_ids(self, gid: int) -> tuple[int, ...]:
        """Glyph ids a composite glyph refers to (empty for a simple glyph); cached."""
        cached = self._components.get(gid)
        if cached is not None:
            return cached
        record = self._glyph_record(gid)
        found: list[int] = []
        if len(record) >= 10 and struct.unpack(">h", record[:2])[0] < 0:
            for _offset, component in _composite_components(record):
                found.append(component)
        result = tuple(found)
        self._components[gid] = result
        return result

    def subset(self, chars: set[str]) -> FontSubset:
        """A font file holding .notdef and the glyphs of chars (and their components)."""
        wanted: set[int] = set()
        unicode_of_old: dict[int, str] = {}
        for ch in chars:
            gid = self.glyph(ch)[0]
            wanted.add(gid)
            unicode_of_old.setdefault(gid, ch)
        stack = list(wanted)
        while stack:
            for component in self._component_ids(stack.pop()):
                if component not in wanted:
                    wanted.add(component)
                    stack.append(component)
        wanted.discard(0)
        order = [0, *sorted(wanted)]
        new_gid = {old: new for new, old in enumerate(order)}

        glyf = bytearray()
        offsets = [0]
        for old in order:
            record = self._glyph_record(old)
            if self._component_ids(old):
                patched = bytearray(record)
                for offset, component in _composite_components(record):
                    struct.pack_into(">H", patched, offset, new_gid[component])
                record = bytes(patched)
            glyf += record
            glyf += b"\0" * (-len(record) % 4)  # keep glyph records 4-byte aligned
            offsets.append(len(glyf))
        count = len(order)
        advances_units = [self._advance_units[old] for old in order]
        hmtx = b"".join(struct.pack(">Hh", adv, 0) for adv in advances_units)
        loca = struct.pack(f">{count + 1}I", *offsets)

        head = bytearray(self._tables["head"])
        struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment: not checked by PDF consumers
        struct.pack_into(">h", head, 50, 1)  # long loca
        hhea = bytearray(self._tables["hhea"])
        struct.pack_into(">H", hhea, 34, count)
        maxp = bytearray(self._tables["maxp"])
        struct.pack_into(">H", maxp, 4, count)
        post = struct.pack(">IiihhIIIII", 0x00030000, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # format 3: no glyph names
        tables = {"head": bytes(head), "hhea": bytes(hhea), "maxp": bytes(maxp), "hmtx": hmtx, "loca": loca,
                  "glyf": bytes(glyf), "post": post}
        for tag in _COPIED_TABLES:
            if tag in self._tables:
                tables[tag] = self._tables[tag]
        data = _assemble_sfnt(tables)
        tag = "".join(chr(65 + b % 26) for b in hashlib.blake2b(loca + glyf[:64], digest_size=6).digest())
        unicode_of = {new_gid[old]: ch for old, ch in unicode_of_old.items()}
        upem = self.units_per_em
        return FontSubset(data, tag, new_gid, [round(a * 1000 / upem) for a in advances_units], unicode_of)


def _composite_components(record: bytes) -> list[tuple[int, int]]:
    """(byte offset of the glyphIndex field, glyph id) of each component of a composite glyph."""
    result: list[tuple[int, int]] = []
    pos = 10
    while True:
        flags, component = struct.unpack_from(">HH", record, pos)
        result.append((pos + 2, component))
        pos += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
        if flags & _WE_HAVE_A_SCALE:
            pos += 2
        elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
            pos += 4
        elif flags & _WE_HAVE_A_TWO_BY_TWO:
            pos += 8
        if not flags & _MORE_COMPONENTS:
            return result


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def _assemble_sfnt(tables: dict[str, bytes]) -> bytes:
    """A TrueType file (sfnt 1.0) from its tables, directory sorted by tag as the spec requires."""
    tags = sorted(tables)
    count = len(tags)
    entry_selector = count.bit_length() - 1
    search_range = 16 * (1 << entry_selector)
    out = bytearray(struct.pack(">IHHHH", 0x00010000, count, search_range, entry_selector, count * 16 - search_range))
    offset = 12 + 16 * count
    body = bytearray()
    for tag in tags:
        data = tables[tag]
        out += struct.pack(">4sIII", tag.encode("latin-1"), _checksum(data), offset + len(body), len(data))
        body += data
        body += b"\0" * (-len(data) % 4)
    return bytes(out + body)
