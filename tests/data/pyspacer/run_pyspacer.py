"""Run pyspacer 0.14.0's own EfficientNet extraction; executed in a subprocess with
PYTHONPATH=<pyspacer install> (see install.sh), never imported by quadrat.

Usage: python run_pyspacer.py JOB.json OUT.npz, where JOB.json is
{"weights": path, "images": [{"path": jpg, "rowcols": [[r, c], ...],
 "patches": npy or null}, ...]}.

For each image, two entry points of pyspacer's public API:
- image level: ``spacer.tasks.extract_features(ExtractFeaturesMsg(...))`` from the JPEG
  (its decoding, reflect-padded cropping, network; features read back from its .npz);
- patch level: ``EfficientNetExtractor.patches_to_features`` on the patches in ``patches``
  (the caller's crops), which isolates the network from the cropping.
Writes image_<i> and patches_<i> arrays (float64, as pyspacer stores them).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.extractors import EfficientNetExtractor
from spacer.messages import ExtractFeaturesMsg
from spacer.tasks import extract_features


def main(job_path: str, out_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    extractor = EfficientNetExtractor(
        data_locations={"weights": DataLocation("filesystem", job["weights"])}
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(job["images"]):
            feature_loc = DataLocation("filesystem", str(Path(tmp) / f"{i}.featurevector"))
            extract_features(
                ExtractFeaturesMsg(
                    job_token=f"parity-{i}",
                    extractor=extractor,
                    rowcols=[(int(r), int(c)) for r, c in image["rowcols"]],
                    image_loc=DataLocation("filesystem", image["path"]),
                    feature_loc=feature_loc,
                )
            )
            stored = ImageFeatures.load(feature_loc)
            results[f"image_{i}"] = np.array([p.data for p in stored.point_features])
            if image.get("patches"):
                patches = list(np.load(image["patches"]))
                features, _ = extractor.patches_to_features(patches)
                results[f"patches_{i}"] = np.array(features)
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(*sys.argv[1:3])
