"""Hand-built survey tracks (BenthicNet metadata tables) for the spatial subsampling tests.

Positions are laid out in metres east/north of an origin and converted to degrees on
quadrat's sphere, so a "0.5 m step" is 0.5 m to within rounding under haversine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from quadrat.datasets.geo import EARTH_RADIUS_M

ORIGIN = (-43.1, 148.0)  # off Tasmania, like the Squidle+ AUV survey


def metres_to_degrees(
    east: NDArray[np.float64], north: NDArray[np.float64], origin: tuple[float, float] = ORIGIN
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(lat, lon) in degrees of points ``east``/``north`` metres from ``origin`` (small offsets)."""
    lat0, lon0 = origin
    lat = lat0 + np.degrees(np.asarray(north, np.float64) / EARTH_RADIUS_M)
    lon = lon0 + np.degrees(
        np.asarray(east, np.float64) / (EARTH_RADIUS_M * np.cos(np.radians(lat0)))
    )
    return lat, lon


def straight_transect(
    n: int = 101, step: float = 0.5, start_north: float = 0.0, start_east: float = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` images ``step`` metres apart heading due north."""
    north = start_north + step * np.arange(n, dtype=np.float64)
    return metres_to_degrees(np.full(n, start_east), north)


def site_table(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    *,
    site: str = "site-a",
    dataset: str = "survey",
    platform: str = "AUV",
) -> pd.DataFrame:
    """A BenthicNet metadata table for one site (images numbered in file order)."""
    n = len(lat)
    images = [f"{site}_{i:06d}.jpg" for i in range(n)]
    return pd.DataFrame(
        {
            "dataset": dataset,
            "site": site,
            "image": images,
            "url": [f"https://example.org/{dataset}/{site}/{name}" for name in images],
            "latitude": lat,
            "longitude": lon,
            "datetime": pd.date_range("2020-01-01", periods=n, freq="s"),
            "depth": 20.0,
            "altitude": 2.0,
            "platform": platform,
        }
    )


def two_stretches(gap: float, n_each: int = 400, step: float = 1.0) -> pd.DataFrame:
    """One site: two parallel transects ``gap`` metres apart (east), surveyed one by one."""
    lat1, lon1 = straight_transect(n_each, step)
    lat2, lon2 = straight_transect(n_each, step, start_east=gap)
    return site_table(np.concatenate([lat1, lat2]), np.concatenate([lon1, lon2]))


def out_and_back(n_each: int = 300, step: float = 5.0, gap: float = 1200.0) -> pd.DataFrame:
    """A transect north, a jump back south over ground it already covered, then on again.

    The jump is longer than ``gap`` but its midpoint lies on the first transect, so it is
    a re-ordering, not a new pseudo-site.
    """
    lat1, lon1 = straight_transect(n_each, step)
    length = step * (n_each - 1)
    # Jump from the far end back to a point `gap` metres south of it, still on the line.
    lat2, lon2 = straight_transect(n_each, step, start_north=length - gap)
    return site_table(np.concatenate([lat1, lat2]), np.concatenate([lon1, lon2]))


def few_positions(n: int = 2000, positions: int = 4) -> pd.DataFrame:
    """A site whose images share a handful of GPS fixes (a drop camera): not spatial."""
    east = np.repeat(np.arange(positions, dtype=np.float64) * 30.0, int(np.ceil(n / positions)))
    lat, lon = metres_to_degrees(east[:n], np.zeros(n))
    return site_table(lat, lon, site="drop-camera", platform="drop camera")
