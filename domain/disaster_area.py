"""An area drawn or uploaded by staff to set one damage level for every dwelling inside it (docs/domain.md §6.2):
reading it from GeoJSON, checking it lies in the municipality, and finding the dwellings inside.

GeoJSON (RFC 7946): a Polygon or MultiPolygon, or a Feature or FeatureCollection of them; positions are
[longitude, latitude] (a third number, the height, is ignored). Every ring must be closed (its last position is
its first) and have at least four positions; each polygon must be valid, and the reason shapely gives
(`explain_validity`, e.g. "Self-intersection[141.44 38.44]") is the reason of the refusal. Several polygons
(of a MultiPolygon or of several features) make one area, their union: overlapping polygons drawn one after the
other are not an error.

The municipality's extent. No boundary polygons ship with the project, so the extent is derived from what it
has: the municipality's office point (municipalities.csv), the centroids of its towns (towns_sample.csv, where it
is one of the sample municipalities) and the coordinates of the dwellings in its ledger, all of which lie inside
the real boundary. Their convex hull, widened by EXTENT_MARGIN_DEGREES (a town's centroid is not its edge, and a
coastal or river-side zone is drawn beyond the last houses), is the extent. An area that does not overlap the
extent at all is refused as outside the municipality (a polygon drawn on the wrong map, or with latitude and
longitude swapped); one that overlaps it is taken, because the hull underestimates the real boundary and a flood
zone may reach into the sea or the next municipality. Only the municipality's own dwellings are ever selected,
so an area reaching beyond it cannot touch another municipality's ledger.

Selecting the dwellings is vectorised: the area is prepared once and shapely's `intersects_xy` tests NumPy
arrays of coordinates (100,000 dwellings in tens of milliseconds). A dwelling on the drawn line counts as inside.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from domain.errors import InvalidArgumentError
from domain.municipalities import municipality
from domain.reference_data import TOWNS_FILE, number, read_rows

# About 2 km in latitude (1.8 km in longitude at 35° N): the margin around the hull of the known points.
EXTENT_MARGIN_DEGREES = 0.02
# An uploaded file is read whole; a drawn flood zone is a few kilobytes, a detailed one a few megabytes.
MAX_GEOJSON_BYTES = 20 * 1024 * 1024

_ARGUMENT = "geojson"
_GEOMETRIES = ("Polygon", "MultiPolygon")


def _refuse(reason: str) -> InvalidArgumentError:
    return InvalidArgumentError(_ARGUMENT, reason)


def parse_area(source: str | bytes | Mapping[str, Any]) -> Polygon | MultiPolygon:
    """The area of a GeoJSON text (or decoded object), checked as the module doc says."""
    if isinstance(source, str | bytes):
        if len(source) > MAX_GEOJSON_BYTES:
            raise _refuse(f"the GeoJSON is larger than {MAX_GEOJSON_BYTES // (1024 * 1024)} MiB")
        try:
            document = json.loads(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _refuse(f"not valid JSON: {exc}") from None
    else:
        document = source
    polygons = [polygon for where, geometry in _geometries(document) for polygon in _polygons(where, geometry)]
    if not polygons:
        raise _refuse("the GeoJSON holds no polygon")
    area = shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]
    assert isinstance(area, Polygon | MultiPolygon)
    return area


def _geometries(document: Any) -> list[tuple[str, Any]]:
    """(where, geometry object) of each geometry of the document."""
    if not isinstance(document, Mapping):
        raise _refuse("the GeoJSON must be an object (a Polygon, MultiPolygon, Feature or FeatureCollection)")
    kind = document.get("type")
    if kind in _GEOMETRIES:
        return [(str(kind), document)]
    if kind == "Feature":
        return [("the feature", _feature_geometry(document, "the feature"))]
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise _refuse("a FeatureCollection needs a list of features")
        found = []
        for i, feature in enumerate(features):
            where = f"feature {i + 1}"
            if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
                raise _refuse(f"{where} is not a Feature")
            found.append((where, _feature_geometry(feature, where)))
        return found
    raise _refuse(f"unsupported GeoJSON type {kind!r} (a Polygon, MultiPolygon, Feature or FeatureCollection)")


def _feature_geometry(feature: Mapping[str, Any], where: str) -> Any:
    geometry = feature.get("geometry")
    if not isinstance(geometry, Mapping) or geometry.get("type") not in _GEOMETRIES:
        got = geometry.get("type") if isinstance(geometry, Mapping) else geometry
        raise _refuse(f"the geometry of {where} must be a Polygon or MultiPolygon, got {got!r}")
    return geometry


def _polygons(where: str, geometry: Mapping[str, Any]) -> list[Polygon]:
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list):
        raise _refuse(f"{where}: coordinates must be a list")
    if geometry["type"] == "Polygon":
        return [_polygon(where, coordinates)]
    return [_polygon(f"{where}, polygon {i + 1}", rings) for i, rings in enumerate(coordinates)]


def _polygon(where: str, rings: Any) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise _refuse(f"{where}: a polygon needs at least its outer ring")
    shell, *holes = (_ring(f"{where}, ring {i + 1}", ring) for i, ring in enumerate(rings))
    polygon = Polygon(shell, holes)
    if not polygon.is_valid:
        raise _refuse(f"{where} is not a valid polygon: {explain_validity(polygon)}")
    return polygon


def _ring(where: str, ring: Any) -> list[tuple[float, float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise _refuse(f"{where}: a ring needs at least 4 positions (the first repeated at the end)")
    positions = [_position(f"{where}, position {i + 1}", p) for i, p in enumerate(ring)]
    if positions[0] != positions[-1]:
        raise _refuse(f"{where}: the ring is not closed (its last position must be its first)")
    return positions


def _position(where: str, position: Any) -> tuple[float, float]:
    if not isinstance(position, list) or not 2 <= len(position) <= 3 or not all(
            isinstance(n, int | float) and not isinstance(n, bool) and math.isfinite(n) for n in position):
        raise _refuse(f"{where}: a position is [longitude, latitude], got {position!r}")
    lon, lat = float(position[0]), float(position[1])
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise _refuse(f"{where}: [{lon}, {lat}] is not a [longitude, latitude] on Earth")
    return lon, lat


def town_points(municipality_code: str) -> list[tuple[float, float]]:
    """(longitude, latitude) of the municipality's office and of its sample towns' centroids."""
    office = municipality(municipality_code)
    points = [(office.lon, office.lat)]
    for row in read_rows(TOWNS_FILE, {"municipality_code", "lat", "lon"}):
        if row["municipality_code"] == municipality_code and row["lat"] and row["lon"]:
            points.append((number(row["lon"], TOWNS_FILE), number(row["lat"], TOWNS_FILE)))
    return points


def municipality_extent(municipality_code: str, dwelling_lons: np.ndarray | Sequence[float] = (),
                        dwelling_lats: np.ndarray | Sequence[float] = ()) -> BaseGeometry:
    """The municipality's extent: the hull of its known points and its dwellings, widened (see the module doc)."""
    known = np.asarray(town_points(municipality_code), dtype=float)
    dwellings = np.column_stack([np.asarray(dwelling_lons, dtype=float), np.asarray(dwelling_lats, dtype=float)])
    points = np.concatenate([known, dwellings]) if len(dwellings) else known
    return shapely.multipoints(points).convex_hull.buffer(EXTENT_MARGIN_DEGREES)


def check_in_municipality(area: BaseGeometry, extent: BaseGeometry, municipality_code: str) -> None:
    """Refuse an area that does not overlap the municipality's extent at all."""
    if not area.intersects(extent):
        west, south, east, north = (round(v, 4) for v in extent.bounds)
        raise _refuse(f"the area lies outside municipality {municipality_code} (its dwellings and towns lie "
                      f"within longitude {west}–{east}, latitude {south}–{north}; GeoJSON positions are "
                      "[longitude, latitude])")


def inside(area: BaseGeometry, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """A boolean mask: which of the points (dwellings) lie inside the area or on its edge."""
    shapely.prepare(area)
    mask: np.ndarray = shapely.intersects_xy(area, np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
    return mask
