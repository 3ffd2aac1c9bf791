"""JPEG decoders side by side: speed on 2000x1500 photos and agreement with Pillow.

Extraction decodes every image once, whole (patches of 50-200 points cover most of a
photo), so the decoder must give Pillow's pixels exactly: pyspacer decodes with Pillow,
and the default mode's features must equal its features within 1e-4. Candidates: Pillow
(libjpeg-turbo inside), torchvision.io.decode_jpeg (libjpeg-turbo on CPU, nvJPEG on
CUDA), and, when importable, simplejpeg and OpenCV. Pillow's ``draft()`` is reported
too, but it decodes at 1/2, 1/4 or 1/8 scale (DCT scaling), so it cannot give full-scale
patches: it is not an option for extraction, only for thumbnails. Prints one JSON object.

    .venv/bin/python benchmarks/decoders.py --images 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def candidates() -> dict[str, Callable[[bytes], np.ndarray]]:
    import torch
    import torchvision.io as tvio

    def pillow(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    def pillow_draft_half(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (im.width // 2, im.height // 2))
            return np.asarray(im.convert("RGB"))

    def torchvision(data: bytes) -> np.ndarray:
        tensor = tvio.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return tensor.permute(1, 2, 0).numpy()

    found: dict[str, Callable[[bytes], np.ndarray]] = {
        "pillow": pillow,
        "torchvision": torchvision,
        "pillow_draft_half": pillow_draft_half,
    }
    try:
        import simplejpeg

        found["simplejpeg"] = lambda data: simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ImportError:
        pass
    try:
        import cv2

        def opencv(data: bytes) -> np.ndarray:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            return bgr[:, :, ::-1]

        found["opencv"] = opencv
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import tempfile

    import torch
    from benchmarks.extract_points import make_images

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        make_images(Path(tmp), args.images, 1500, 2000, seed=0)
        blobs = [p.read_bytes() for p in sorted(Path(tmp).iterdir())]
    decoders = candidates()
    reference = [decoders["pillow"](b) for b in blobs]
    results: dict[str, Any] = {}
    for name, decode in decoders.items():
        decode(blobs[0])  # warm up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            outputs = [decode(b) for b in blobs]
            best = min(best, time.perf_counter() - start)
        same_shape = all(o.shape == r.shape for o, r in zip(outputs, reference, strict=True))
        pairs = zip(outputs, reference, strict=True)
        diff = max(int(np.abs(o.astype(int) - r).max()) for o, r in pairs) if same_shape else None
        results[name] = {
            "images_per_s_one_thread": round(len(blobs) / best, 1),
            "max_abs_pixel_diff_vs_pillow": diff,
            "full_scale": same_shape,
        }
    print(
        json.dumps(
            {
                "images": args.images,
                "size": [1500, 2000],
                "decoders": results,
                "loadavg": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
