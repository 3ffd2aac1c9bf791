"""Great-circle distances on one spherical Earth, vectorised over numpy arrays.

BenthicNet mixed two Earth radii (6,371.0088 km for track distances, 6,371 km for its
ball-tree look-ups); quadrat uses :data:`EARTH_RADIUS_M` everywhere, so a distance
measured along a track and a radius searched in a spatial index mean the same metres.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), metres: the one radius every quadrat distance uses."""


def haversine(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle distance in metres between points given in degrees (broadcasts).

    The operations follow the usual haversine formula in the same order as the
    ``haversine`` package, so distances agree with BenthicNet's bit for bit.
    """
    phi1 = np.radians(np.asarray(lat1, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2, dtype=np.float64)) - np.radians(
        np.asarray(lon1, dtype=np.float64)
    )
    h = np.sin(dphi * 0.5) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam * 0.5) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h)), dtype=np.float64)


def consecutive_distances(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Distances in metres between each point and the next one (length ``n - 1``)."""
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = np.asarray(lon, dtype=np.float64)
    return haversine(lat_a[:-1], lon_a[:-1], lat_a[1:], lon_a[1:])


def to_radians_xy(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """``(n, 2)`` array of (lat, lon) in radians: the layout scikit-learn's haversine wants."""
    return np.radians(
        np.column_stack([np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)])
    )


def metres_to_radians(metres: float) -> float:
    """A ground distance as the central angle that ``BallTree(metric="haversine")`` uses."""
    return metres / EARTH_RADIUS_M


def midpoints(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Great-circle midpoints (degrees) of point pairs, via the mean of unit n-vectors.

    Averaging n-vectors is exact on the sphere and has no trouble at the antimeridian,
    unlike averaging degrees.
    """
    phi = np.radians(np.stack([np.asarray(lat1, np.float64), np.asarray(lat2, np.float64)]))
    lam = np.radians(np.stack([np.asarray(lon1, np.float64), np.asarray(lon2, np.float64)]))
    x = np.mean(np.cos(phi) * np.cos(lam), axis=0)
    y = np.mean(np.cos(phi) * np.sin(lam), axis=0)
    z = np.mean(np.sin(phi), axis=0)
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))
