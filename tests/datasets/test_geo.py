"""Great-circle helpers: one radius, known distances, midpoints."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.datasets.geo import (
    EARTH_RADIUS_M,
    consecutive_distances,
    haversine,
    metres_to_radians,
    midpoints,
)
from tests.data.tracks.data import straight_transect


def test_one_degree_of_latitude_is_a_ninetieth_of_a_quarter_circle() -> None:
    expected = np.pi * EARTH_RADIUS_M / 180
    assert haversine(0.0, 0.0, 1.0, 0.0) == pytest.approx(expected, rel=1e-12)
    assert haversine(10.0, 20.0, 10.0, 20.0) == 0.0


def test_antipodes_are_half_a_circumference_apart() -> None:
    assert haversine(0.0, 0.0, 0.0, 180.0) == pytest.approx(np.pi * EARTH_RADIUS_M, rel=1e-12)


def test_broadcasts_and_is_symmetric() -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(-80, 80, 50)
    lon = rng.uniform(-180, 180, 50)
    there = haversine(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    assert there.shape == (50, 50)
    np.testing.assert_allclose(there, there.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(there), 0.0, atol=1e-9)


def test_consecutive_distances_of_a_half_metre_transect() -> None:
    lat, lon = straight_transect(11, 0.5)
    steps = consecutive_distances(lat, lon)
    assert steps.shape == (10,)
    np.testing.assert_allclose(steps, 0.5, atol=1e-8)  # haversine rounding ~1e-9 m


def test_radius_conversion_matches_haversine() -> None:
    assert metres_to_radians(EARTH_RADIUS_M * 0.25) == pytest.approx(0.25)


def test_midpoint_is_equidistant_even_across_the_antimeridian() -> None:
    mid_lat, mid_lon = midpoints(np.array([10.0]), np.array([179.5]), [10.0], [-179.5])
    assert abs(abs(mid_lon[0]) - 180.0) < 1e-9
    a = haversine(mid_lat, mid_lon, 10.0, 179.5)
    b = haversine(mid_lat, mid_lon, 10.0, -179.5)
    np.testing.assert_allclose(a, b, rtol=1e-9)
