"""The registry: names, patterns, plug-ins, timm names, helpful errors."""

from __future__ import annotations

import numpy as np
import pytest

from quadrat.errors import InputError, WeightsError
from quadrat.extractors import (
    Extractor,
    ExtractorConfig,
    create_extractor,
    list_extractors,
    register_extractor,
)
from quadrat.extractors import registry as registry_module


def test_builtin_names() -> None:
    names = list_extractors()
    assert {"texture", "efficientnet_b0", "resnet50", "vgg16"} <= set(names)
    assert names == sorted(names)
    assert list_extractors("*resnet*") == ["benthicnet_resnet50", "resnet50"]
    assert list_extractors("nothing*") == []


def test_create_texture_by_name() -> None:
    extractor = create_extractor("texture", batch_size=8)
    assert extractor.config.name == "texture" and extractor.batch_size == 8
    assert extractor.key.startswith("texture@v")


def test_texture_takes_no_weights(tmp_path) -> None:
    with pytest.raises(WeightsError, match="takes no weights"):
        create_extractor("texture", tmp_path / "w.pt")
    # random_weights is moot for a weight-free extractor (benchmarks pass it to every name)
    assert create_extractor("texture", random_weights=True).key == create_extractor("texture").key


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(InputError, match=r"unknown extractor 'effnet'.*efficientnet_b0.*timm"):
        create_extractor("effnet")


def test_a_typo_gets_a_suggestion_and_a_bare_timm_name_is_not_guessed() -> None:
    with pytest.raises(InputError, match=r"did you mean 'texture'") as caught:
        create_extractor("texure")
    assert caught.value.param == "extractor"
    with pytest.raises(InputError, match=r"timm:<model>"):
        create_extractor("resnet18")  # a timm architecture, but only as timm:resnet18


def test_bad_batch_size() -> None:
    with pytest.raises(InputError, match="batch_size"):
        create_extractor("texture", batch_size=0)


def test_any_timm_model() -> None:
    extractor = create_extractor("timm:resnet18", random_weights=True)
    assert extractor.config.name == "timm:resnet18"
    assert extractor.feature_dim == 512
    assert extractor.config.mean == pytest.approx((0.485, 0.456, 0.406))
    patches = np.zeros((2, 224, 224, 3), np.uint8)
    assert extractor.extract(patches).shape == (2, 512)


class _Constant(Extractor):
    def __init__(self, value: float, batch_size: int = 32, **_: object) -> None:
        self.config = ExtractorConfig(name="constant", feature_dim=2)
        self.value = value
        self.batch_size = batch_size

    def _extract_batch(self, batch: np.ndarray) -> np.ndarray:
        return np.full((len(batch), 2), self.value, np.float32)


def test_register_a_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry_module.EXTRACTORS, "_items", dict(registry_module.EXTRACTORS._items)
    )

    @register_extractor("constant")
    def constant(weights=None, **options):
        return _Constant(0.5, **options)

    assert "constant" in list_extractors()
    extractor = create_extractor("constant", batch_size=3)
    features = extractor.extract(np.zeros((7, 224, 224, 3), np.uint8))
    assert features.shape == (7, 2) and (features == 0.5).all()
    assert extractor.key == "constant@noweights"
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("constant")(lambda weights=None, **o: _Constant(1.0))
