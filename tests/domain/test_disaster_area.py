"""The area rule (domain/disaster_area.py): GeoJSON read as [longitude, latitude], each refusal with its reason,
the municipality's extent derived from its office, towns and dwellings, and the dwellings inside found at once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon

from domain.disaster_area import (
    EXTENT_MARGIN_DEGREES,
    check_in_municipality,
    inside,
    municipality_extent,
    parse_area,
    town_points,
)
from domain.errors import InvalidArgumentError

ONAGAWA = "045811"  # 女川町: office at 141.442972 E, 38.445417 N; 30 sample towns


def square(lon: float, lat: float, size: float) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def refused(source: Any, *words: str) -> str:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_area(source if isinstance(source, str | bytes) else json.dumps(source))
    assert caught.value.argument == "geojson"
    assert all(w in caught.value.reason for w in words), caught.value.reason
    return caught.value.reason


def test_a_polygon_a_feature_and_a_collection_are_read_as_longitude_latitude() -> None:
    area = parse_area(json.dumps(polygon(square(141.44, 38.44, 0.01))))
    assert isinstance(area, Polygon) and area.bounds == pytest.approx((141.44, 38.44, 141.45, 38.45))
    feature = {"type": "Feature", "properties": {"name": "浸水区域"}, "geometry": polygon(square(141.44, 38.44, 0.01))}
    assert parse_area(feature).equals(area)
    collection = {"type": "FeatureCollection", "features": [
        feature, {"type": "Feature", "properties": None,
                  "geometry": {"type": "MultiPolygon", "coordinates": [[square(141.46, 38.44, 0.01)]]}}]}
    both = parse_area(json.dumps(collection).encode())
    assert isinstance(both, MultiPolygon) and len(both.geoms) == 2
    # Overlapping polygons drawn one after the other make one area, their union (not an invalid MultiPolygon).
    overlapping = {"type": "MultiPolygon",
                   "coordinates": [[square(141.44, 38.44, 0.02)], [square(141.45, 38.45, 0.02)]]}
    union = parse_area(overlapping)
    assert union.is_valid and union.area == pytest.approx(0.02**2 * 2 - 0.01**2)
    # A third number (the height) is allowed and ignored.
    assert parse_area(polygon([[*p, 3.0] for p in square(141.44, 38.44, 0.01)])).equals(area)


def test_invalid_geojson_is_refused_with_the_reason() -> None:
    refused("{not json", "not valid JSON")
    refused("[]", "must be an object")
    refused({"type": "Point", "coordinates": [141.44, 38.44]}, "unsupported GeoJSON type 'Point'")
    refused({"type": "GeometryCollection", "geometries": []}, "unsupported")
    refused({"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}}, "must be a Polygon",
            "LineString")
    refused({"type": "Feature", "geometry": None}, "must be a Polygon")
    refused({"type": "FeatureCollection", "features": []}, "holds no polygon")
    refused({"type": "FeatureCollection", "features": [{"type": "Polygon"}]}, "feature 1 is not a Feature")
    refused({"type": "Polygon", "coordinates": "141,38"}, "coordinates must be a list")
    refused(polygon(), "at least its outer ring")
    refused(polygon(square(141.44, 38.44, 0.01)[:3]), "at least 4 positions")
    refused(polygon([*square(141.44, 38.44, 0.01)[:-1], [141.44, 38.5]]), "not closed")
    refused(polygon([[141.44, "38.44"], *square(141.44, 38.44, 0.01)[1:]]), "position 1", "[longitude, latitude]")
    refused(polygon([[True, 38.44], *square(141.44, 38.44, 0.01)[1:]]), "position 1")
    # Latitude first (a common mistake): 141 is no latitude.
    refused(polygon([[lat, lon] for lon, lat in square(141.44, 38.44, 0.01)]), "not a [longitude, latitude] on Earth")


def test_a_self_intersecting_polygon_is_refused_with_shapely_s_reason() -> None:
    bowtie = [[141.44, 38.44], [141.45, 38.45], [141.45, 38.44], [141.44, 38.45], [141.44, 38.44]]
    reason = refused(polygon(bowtie), "Polygon is not a valid polygon", "Self-intersection[141.445 38.445]")
    assert "Self-intersection" in reason
    hole_outside = polygon(square(141.44, 38.44, 0.01), square(141.5, 38.5, 0.01))
    refused({"type": "MultiPolygon", "coordinates": [hole_outside["coordinates"]]}, "polygon 1 is not a valid")


def test_the_extent_is_the_widened_hull_of_the_office_the_towns_and_the_dwellings() -> None:
    points = town_points(ONAGAWA)
    assert points[0] == (141.442972, 38.445417) and len(points) == 31  # the office, then its 30 towns
    extent = municipality_extent(ONAGAWA)
    west, _, east, _ = extent.bounds
    assert west == pytest.approx(141.41433 - EXTENT_MARGIN_DEGREES)
    assert east == pytest.approx(141.603485 + EXTENT_MARGIN_DEGREES)
    # A dwelling beyond the towns (a house up the valley) widens it.
    wider = municipality_extent(ONAGAWA, np.array([141.35]), np.array([38.46]))
    assert wider.bounds[0] == pytest.approx(141.35 - EXTENT_MARGIN_DEGREES)

    check_in_municipality(parse_area(polygon(square(141.44, 38.44, 0.01))), extent, ONAGAWA)
    # A tsunami zone drawn out to sea overlaps the extent: taken.
    check_in_municipality(parse_area(polygon(square(141.45, 38.40, 0.5))), extent, ONAGAWA)
    with pytest.raises(InvalidArgumentError, match="outside municipality 045811") as caught:
        check_in_municipality(parse_area(polygon(square(135.37, 33.72, 0.01))), extent, ONAGAWA)  # 田辺市
    assert caught.value.argument == "geojson"


def test_the_dwellings_inside_are_selected_at_once_edge_included_hole_excluded() -> None:
    area = parse_area(polygon(square(141.40, 38.40, 0.10), square(141.44, 38.44, 0.02)))
    lons = np.array([141.41, 141.45, 141.40, 141.55, 141.49])
    lats = np.array([38.41, 38.45, 38.45, 38.45, 38.49])
    assert inside(area, lons, lats).tolist() == [True, False, True, False, True]

    rng = np.random.default_rng(7)
    lons, lats = rng.uniform(141.3, 141.7, 100_000), rng.uniform(38.3, 38.6, 100_000)
    mask = inside(area, lons, lats)
    expected = ((lons >= 141.40) & (lons <= 141.50) & (lats >= 38.40) & (lats <= 38.50)
                & ~((lons > 141.44) & (lons < 141.46) & (lats > 38.44) & (lats < 38.46)))
    assert mask.dtype == bool and (mask == expected).all()
