"""The embedded default extractor: colour and texture statistics, no weights, deterministic.

In the spirit of CoralNet Alpha's hand-made descriptor, at three scales:

- *context*: the whole 224 px patch at half resolution (2x2 means, 112 x 112);
- *centre*: the central 112 px at full resolution;
- *core*: the central 56 px (colour only: what lies right under the point).

Colour (62 values a scale): mean, std and skew per channel in RGB and CIE Lab; a
lightness histogram and a joint a*b* (hue/chroma) histogram. Texture (55 values, context
and centre): rotation-invariant uniform local binary patterns at radii 1, 2 and 4;
grey-level co-occurrence statistics; gradient magnitude statistics and histogram,
orientation coherence (rotation invariant: photo quadrats have no "up"), chroma edges;
local contrast. Histograms are square-rooted (Hellinger); every value is scaled to order
1 so that linear classifiers need no feature scaling.

Speed: numpy vectorised over the batch, colour by table lookup, histograms by one
``bincount`` per pixel set with a per-patch offset (joint histograms, marginalised
afterwards, where several share the same pixels).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from quadrat.errors import InputError, WeightsError
from quadrat.extractors.base import Extractor, ExtractorConfig
from quadrat.extractors.registry import register_extractor

#: Bumped whenever the features change, so the feature store never mixes versions.
TEXTURE_VERSION = 1
SCALE_SIZE = 112
CORE_SIZE = 56

_L_BINS = 8
_AB_BINS = 6  # per axis of the joint a*b* histogram
_AB_RANGE = 40.0  # a*, b* clipped to [-40, 40]: seafloor colours rarely go beyond
_LBP_RADII = (1, 2, 4)
_LBP_BINS = 10  # riu2 codes for 8 neighbours: 0..8 ones in a uniform pattern, 9 = other
_GLCM_LEVELS = 8
_GLCM_DISTANCES = (1, 4)
_GRAD_EDGES = np.array([0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256], np.float32)
_BLOCKS = (8, 16)

COLOUR_DIM = 18 + _L_BINS + _AB_BINS**2
TEXTURE_DIM = (
    _LBP_BINS * len(_LBP_RADII)
    + 4 * len(_GLCM_DISTANCES)
    + (3 + len(_GRAD_EDGES) + 1 + 2)
    + 2 * len(_BLOCKS)
)
FEATURE_DIM = 3 * COLOUR_DIM + 2 * TEXTURE_DIM


def _colour_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lab and joint (lightness, a*b*) bin of every colour quantised to 6 bits per channel.

    A table lookup replaces the per-pixel gamma, matrix and cube root (the costliest
    steps); 6 bits keep the error under 1.6% of the range, far below what a descriptor
    resolves. Lab is stored scaled (L/100, a/50, b/50) to be of order 1.
    """
    levels = (np.arange(64, dtype=np.float64) * 4 + 1.5) / 255
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    srgb = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), xyz * 7.787 + 16 / 116)
    lab = np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])])
    l_bin = np.clip(lab[0] * (_L_BINS / 100), 0, _L_BINS - 1).astype(np.uint8)
    ab = np.clip((lab[1:] + _AB_RANGE) * (_AB_BINS / (2 * _AB_RANGE)), 0, _AB_BINS - 1)
    ab_bin = ab[0].astype(np.intp) * _AB_BINS + ab[1].astype(np.intp)
    joint_bin = l_bin.astype(np.intp) * _AB_BINS**2 + ab_bin
    scaled = lab * np.array([[1 / 100], [1 / 50], [1 / 50]])
    return scaled.astype(np.float32), joint_bin


_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_LAB, _COLOUR_BIN = _colour_tables()


def _riu2_lut() -> np.ndarray:
    """Rotation-invariant uniform LBP class of each 8-bit code (Ojala et al. 2002)."""
    codes = np.arange(256)
    bits = (codes[:, None] >> np.arange(8)) & 1
    transitions = (bits != np.roll(bits, 1, axis=1)).sum(1)
    return np.where(transitions <= 2, bits.sum(1), 9).astype(np.uint8)


_RIU2 = _riu2_lut()
# The 8 neighbours in circular order (so that bit transitions are meaningful).
_RING = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


class TextureExtractor(Extractor):
    """Weights-free colour/texture descriptor, FEATURE_DIM float32 values per patch.

    Batches run on ``num_threads`` threads (numpy releases the GIL in its array loops);
    default: ``$OMP_NUM_THREADS`` when set (what PyTorch would use), else the cores this
    process may run on. Needs no torch.
    """

    def __init__(
        self,
        *,
        batch_size: int = 32,
        device: object = "cpu",
        num_threads: int | None = None,
    ) -> None:
        if str(device).split(":")[0] != "cpu":
            raise InputError(
                "the texture extractor runs on the CPU only", value=str(device), param="device"
            )
        if batch_size < 1:
            raise InputError("batch_size must be at least 1", value=batch_size, param="batch_size")
        self.config = ExtractorConfig(name="texture", feature_dim=FEATURE_DIM)
        self.batch_size = batch_size
        self.device = "cpu"
        self.num_threads = num_threads or default_threads()

    def _weights_tag(self) -> str:
        return f"v{TEXTURE_VERSION}"

    def extract(self, patches: np.ndarray) -> np.ndarray:
        patches = self._check_patches(patches)
        batches = [
            patches[i : i + self.batch_size] for i in range(0, len(patches), self.batch_size)
        ]
        if not batches:
            return np.empty((0, FEATURE_DIM), np.float32)
        if self.num_threads > 1 and len(batches) > 1:
            with ThreadPoolExecutor(min(self.num_threads, len(batches))) as pool:
                return np.concatenate(list(pool.map(texture_features, batches)))
        return np.concatenate([texture_features(b) for b in batches])

    def _extract_batch(self, batch: np.ndarray) -> np.ndarray:
        return texture_features(batch)


def texture_features(patches: np.ndarray) -> np.ndarray:
    """(B, 224, 224, 3) uint8 RGB -> (B, FEATURE_DIM) float32."""
    planes = np.ascontiguousarray(patches.transpose(3, 0, 1, 2))  # (3, B, H, W)
    context = _half_resolution(planes)
    centre = _central(planes, SCALE_SIZE)
    core = _central(planes, CORE_SIZE)
    parts = []
    for scale in (context, centre):
        colour, lab = _colour(scale)
        parts += [colour, _texture(_luma(scale), lab)]
    parts.append(_colour(core)[0])
    return np.concatenate(parts, axis=1, dtype=np.float32)


def _central(planes: np.ndarray, size: int) -> np.ndarray:
    lo = (planes.shape[2] - size) // 2
    return np.ascontiguousarray(planes[:, :, lo : lo + size, lo : lo + size])


def _half_resolution(planes: np.ndarray) -> np.ndarray:
    """Means of 2x2 pixels, rounded: (3, B, H, W) uint8 -> (3, B, H/2, W/2) uint8."""
    rows = np.add(planes[:, :, ::2], planes[:, :, 1::2], dtype=np.uint16)
    total = rows[..., ::2] + rows[..., 1::2]
    total += 2
    total >>= 2
    return total.astype(np.uint8)


def _colour(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour statistics (B, COLOUR_DIM) and scaled Lab planes (3, B, H, W) of one scale."""
    b = planes.shape[1]
    index = _colour_index(planes)
    rgb = planes.reshape(3, b, -1).astype(np.float32) * np.float32(1 / 255)
    lab = np.take(_LAB, index, axis=1)  # contiguous, unlike _LAB[:, index]
    joint = _fractions(_COLOUR_BIN[index], _L_BINS * _AB_BINS**2)
    joint = joint.reshape(b, _L_BINS, _AB_BINS**2)
    stats = [
        _moments(rgb),
        _moments(lab.reshape(3, b, -1)),
        np.sqrt(joint.sum(2)),  # lightness histogram
        np.sqrt(joint.sum(1)),  # a*b* histogram
    ]
    return np.concatenate(stats, axis=1), lab


def _texture(luma: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Texture statistics of one scale, (B, TEXTURE_DIM)."""
    return np.concatenate(
        [
            _lbp(luma),
            _glcm(luma),
            _gradients(luma, lab),
            _local_contrast(luma),
        ],
        axis=1,
    )


def _colour_index(planes: np.ndarray) -> np.ndarray:
    """Index of each pixel's 6-bit colour in the tables, (3, B, H, W) -> (B, H, W)."""
    r, g, b = (p >> 2 for p in planes)
    index = r.astype(np.intp) << 12
    index |= g.astype(np.intp) << 6
    index |= b
    return index


def _luma(planes: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in integer arithmetic, (3, B, H, W) uint8 -> (B, H, W) uint8."""
    r, g, b = planes
    y = np.multiply(r, 77, dtype=np.uint16)
    y += np.multiply(g, 150, dtype=np.uint16)
    y += np.multiply(b, 29, dtype=np.uint16)
    y += 128
    y >>= 8
    return y.astype(np.uint8)


def _moments(x: np.ndarray) -> np.ndarray:
    """Mean, standard deviation and skewness per channel: (C, B, n) -> (B, 3C).

    Skewness divides by (var + 0.01^2)^1.5 rather than std^3, so that nearly flat patches
    (std of a few grey levels or less) give a small value, not an exploding ratio of
    rounding errors; then clipped and halved to stay of order 1.
    """
    mean = x.mean(axis=-1)
    d = x - mean[..., None]
    d2 = d * d
    var = d2.mean(axis=-1)
    d2 *= d
    skew = d2.mean(axis=-1) / (var + 1e-4) ** 1.5
    return np.concatenate([mean, 4 * np.sqrt(var), np.clip(skew, -6, 6) / 2], axis=0).T


def _fractions(index: np.ndarray, bins: int) -> np.ndarray:
    """Per-patch histograms of intp bin indices (B, ...) as fractions (B, bins): one
    bincount for the whole batch, each patch's indices offset into its own range."""
    b = index.shape[0]
    flat = index.reshape(b, -1)
    flat += (np.arange(b, dtype=np.intp) * bins)[:, None]  # callers pass a fresh array
    counts = np.bincount(flat.ravel(), minlength=b * bins).reshape(b, bins)
    return (counts / flat.shape[1]).astype(np.float32)


def _lbp(luma: np.ndarray) -> np.ndarray:
    """Histograms of rotation-invariant uniform LBP codes (8 neighbours at chessboard
    radius r) for each radius, from one joint histogram over the common interior."""
    h, w = luma.shape[1:]
    m = max(_LBP_RADII)
    centre = luma[:, m : h - m, m : w - m]
    joint = np.zeros(centre.shape, np.uint16)  # 10**3 joint classes fit
    code = np.empty(centre.shape, np.uint8)
    bit_plane = np.empty(centre.shape, np.uint8)
    for r in _LBP_RADII:
        code.fill(0)
        for bit, (dy, dx) in enumerate(_RING):
            neighbour = luma[:, m + dy * r : h - m + dy * r, m + dx * r : w - m + dx * r]
            np.greater_equal(neighbour, centre, out=bit_plane.view(bool))
            bit_plane <<= bit
            code |= bit_plane
        joint *= _LBP_BINS
        joint += np.take(_RIU2, code)
    bins = _LBP_BINS ** len(_LBP_RADII)
    p = _fractions(joint.astype(np.intp), bins).reshape(-1, *([_LBP_BINS] * len(_LBP_RADII)))
    axes = range(1, len(_LBP_RADII) + 1)
    marginals = [p.sum(tuple(a for a in axes if a != k)) for k in axes]
    return np.sqrt(np.concatenate(marginals, axis=1))


def _glcm(luma: np.ndarray) -> np.ndarray:
    """Grey-level co-occurrence statistics (8 levels; right and down neighbours; symmetric)
    per distance: contrast, homogeneity, energy, correlation."""
    b = luma.shape[0]
    levels, dists = _GLCM_LEVELS, _GLCM_DISTANCES
    q = (luma >> 5).astype(np.intp)  # 8 levels
    m = max(dists)
    # One joint code per pixel: its level and its neighbours' at every distance, both ways.
    codes = []
    for horizontal in (True, False):
        base = q[:, :, :-m] if horizontal else q[:, :-m, :]
        code = base.copy()
        for d in dists:
            shifted = (
                q[:, :, d : d + base.shape[2]] if horizontal else q[:, d : d + base.shape[1], :]
            )
            code *= levels
            code += shifted
        codes.append(code.reshape(b, -1))
    n = len(dists)
    p_all = _fractions(np.concatenate(codes, axis=1), levels ** (n + 1))
    p_all = p_all.reshape(b, *([levels] * (n + 1)))
    i = np.arange(levels, dtype=np.float32)
    diff = i[:, None] - i[None, :]
    stats = []
    for k in range(n):
        others = tuple(2 + j for j in range(n) if j != k)
        p = p_all.sum(others) if others else p_all
        p = (p + p.transpose(0, 2, 1)) / 2
        contrast = (p * diff**2).sum((1, 2))
        homogeneity = (p / (1 + np.abs(diff))).sum((1, 2))
        energy = (p**2).sum((1, 2))
        # Elementwise products and sums only (no BLAS), so that a patch's features do not
        # depend on the batch it comes in.
        marginal = p.sum(2)
        mu = (marginal * i).sum(1)
        var = (marginal * i**2).sum(1) - mu**2
        correlation = ((p * (i[:, None] * i[None, :])).sum((1, 2)) - mu**2) / (var + 1e-3)
        stats.append(np.stack([contrast / 2, homogeneity, 4 * np.sqrt(energy), correlation], 1))
    return np.concatenate(stats, axis=1)


def _gradients(luma: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Luma gradient magnitude mean, std, histogram and orientation coherence; mean chroma
    gradients of a* and b* (edges between colours of equal brightness).

    luma: (B, H, W) uint8; lab: (3, B, H, W) scaled Lab.
    """
    b = luma.shape[0]
    g = luma.astype(np.int16)
    gx = (g[:, 1:-1, 2:] - g[:, 1:-1, :-2]).astype(np.float32)  # central differences
    gy = (g[:, 2:, 1:-1] - g[:, :-2, 1:-1]).astype(np.float32)
    gxx, gyy, gxy = gx * gx, gy * gy, gx * gy
    jxx, jyy, jxy = gxx.sum((1, 2)), gyy.sum((1, 2)), gxy.sum((1, 2))
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-3)
    gxx += gyy
    magnitude = np.sqrt(gxx).reshape(b, -1) * np.float32(1 / 510)
    # Bin index = number of edges below (cheaper than searchsorted for a few edges).
    index = np.zeros(magnitude.shape, np.intp)
    for edge in _GRAD_EDGES:
        index += magnitude > edge
    hist = np.sqrt(_fractions(index, len(_GRAD_EDGES) + 1))
    chroma = [
        np.abs(lab[c, :, 1:-1, 2:] - lab[c, :, 1:-1, :-2]).mean((1, 2))
        + np.abs(lab[c, :, 2:, 1:-1] - lab[c, :, :-2, 1:-1]).mean((1, 2))
        for c in (1, 2)
    ]
    return np.concatenate(
        [
            np.stack([20 * magnitude.mean(1), 20 * magnitude.std(1), coherence], axis=1),
            hist,
            10 * np.stack(chroma, axis=1),
        ],
        axis=1,
    )


def _local_contrast(luma: np.ndarray) -> np.ndarray:
    """Mean and spread of the luma standard deviation within tiles of each _BLOCKS size
    (larger tiles summed from the smallest ones' sums)."""
    b, h, w = luma.shape
    t = _BLOCKS[0]
    y = luma[:, : h - h % t, : w - w % t].astype(np.float32) * np.float32(1 / 255)
    s1 = y.reshape(b, h // t, t, w // t, t).sum(4).sum(2)
    s2 = (y * y).reshape(b, h // t, t, w // t, t).sum(4).sum(2)
    out = []
    for block in _BLOCKS:
        k = block // t
        n1, n2 = s1.shape[1] // k * k, s1.shape[2] // k * k
        tile_sum = s1[:, :n1, :n2].reshape(b, n1 // k, k, n2 // k, k).sum((2, 4))
        tile_sq = s2[:, :n1, :n2].reshape(b, n1 // k, k, n2 // k, k).sum((2, 4))
        count = block * block
        var = np.maximum(tile_sq / count - (tile_sum / count) ** 2, 0)
        std = np.sqrt(var).reshape(b, -1)
        out.append(np.stack([8 * std.mean(1), 8 * std.std(1)], axis=1))
    return np.concatenate(out, axis=1)


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` when set to a number, else the CPUs this process may use."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@register_extractor("texture")
def texture(
    weights: str | Path | None = None, *, random_weights: bool = False, **options: Any
) -> TextureExtractor:
    """The weights-free colour/texture descriptor (the default); ``random_weights`` is moot."""
    if weights is not None:
        raise WeightsError(
            "the texture extractor takes no weights file", path=weights, param="weights"
        )
    return TextureExtractor(**options)
