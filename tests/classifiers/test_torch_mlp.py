"""The PyTorch MLP trainer: scikit-learn contract, same accuracy as MLPClassifier, storage."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from typer.testing import CliRunner

from quadrat.classifiers import serialize
from quadrat.classifiers.estimators import CoralNetMLP, make_classifier
from quadrat.classifiers.synthetic import make_point_features
from quadrat.classifiers.torch_mlp import TorchMLPClassifier
from quadrat.classifiers.training import train_classifier
from quadrat.cli import app
from quadrat.errors import DeviceError, InputError, TrainingDataError

torch = pytest.importorskip("torch")
has_cuda = torch.cuda.is_available()


# Few epochs at a higher rate keep the ~100 checks fast; the calibrated logistic
# regression with solver="torch" shares this trainer and CoralNetMLP's wrapper code.
@parametrize_with_checks(
    [
        TorchMLPClassifier(device="cpu", learning_rate_init=0.01, max_iter=15, random_state=0),
        CoralNetMLP(backend="torch", device="cpu", learning_rate_init=0.01, max_iter=15),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "coral", "sand")
    model = TorchMLPClassifier((16,), device="cpu", learning_rate_init=0.01, max_iter=60)
    model.fit(X, y)
    assert model.score(X, y) > 0.97
    assert model.classes_.tolist() == ["coral", "sand"]
    assert model.device_ == "cpu"
    assert [w.shape for w in model.coefs_] == [(5, 16), (16, 2)]
    assert all(isinstance(w, np.ndarray) and w.dtype == np.float32 for w in model.coefs_)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


def test_no_hidden_layer_is_logistic_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.argmax(X[:, :3], axis=1)
    model = TorchMLPClassifier((), device="cpu", max_iter=100, learning_rate_init=0.05)
    model.fit(X, y)
    assert len(model.coefs_) == 1 and model.coefs_[0].shape == (4, 3)
    reference = LogisticRegression().fit(X, y).score(X, y)
    assert model.score(X, y) >= reference - 0.02


def test_same_accuracy_range_as_sklearn_mlp():
    """Same network, data and epochs: held-out accuracies within a few points."""
    data = make_point_features(
        2400, n_features=64, n_classes=6, separation=0.3, image_effect=0.2, random_state=3
    )
    X = data.X.astype(np.float32)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    train, test = np.arange(2000), np.arange(2000, 2400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = MLPClassifier((100,), max_iter=20, random_state=0).fit(X[train], data.y[train])
    ours = TorchMLPClassifier((100,), max_iter=20, device="cpu", random_state=0)
    ours.fit(X[train], data.y[train])
    ref_acc, our_acc = ref.score(X[test], data.y[test]), ours.score(X[test], data.y[test])
    assert ref_acc > 0.6  # a problem hard enough to tell models apart
    assert abs(our_acc - ref_acc) < 0.05, (our_acc, ref_acc)
    # Same loss definition (cross-entropy plus the L2 term): final losses close too.
    assert ours.loss_ == pytest.approx(ref.loss_, rel=0.25)


def test_stopping_rule_matches_sklearn():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    # A huge tol: no epoch counts as an improvement after the first.
    ours = TorchMLPClassifier((4,), tol=1e9, n_iter_no_change=2, device="cpu").fit(X, y)
    ref = MLPClassifier((4,), tol=1e9, n_iter_no_change=2, max_iter=200).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ == 4
    assert len(ours.loss_curve_) == 4


def test_cpu_training_is_deterministic_and_seeded(easy):
    def fit(seed: int) -> TorchMLPClassifier:
        return TorchMLPClassifier((8,), max_iter=5, device="cpu", random_state=seed).fit(
            easy.X, easy.y
        )

    a, b, c = fit(0), fit(0), fit(1)
    for wa, wb in zip(a.coefs_, b.coefs_, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_coralnet_mlp_torch_backend_matches_sklearn_backend(easy):
    """Calibration is unchanged: both backends give calibrated, equally good scores."""
    accuracies = {}
    for backend in ("sklearn", "torch"):
        model = CoralNetMLP(backend=backend, device="cpu", max_iter=20).fit(
            easy.X, easy.y, groups=easy.groups
        )
        proba = model.predict_proba(easy.X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        accuracies[backend] = float(np.mean(model.predict(easy.X) == easy.y))
        assert model.calibration_ in ("holdout", "cv")
    assert type(model.estimator_) is TorchMLPClassifier
    assert model.device_ == "cpu"
    assert accuracies["torch"] > 0.9
    assert abs(accuracies["torch"] - accuracies["sklearn"]) < 0.05


def test_make_classifier_device_selects_torch():
    assert make_classifier("mlp", None).backend == "sklearn"
    mlp = make_classifier("mlp", 60_000, device="cpu")
    assert (mlp.backend, mlp.device, mlp.hidden_layer_sizes) == ("torch", "cpu", (200, 100))
    lr = make_classifier("lr", None, device="auto")
    assert (lr.solver, lr.device) == ("torch", "auto")


def test_train_classifier_on_device(easy):
    result = train_classifier(
        easy.X, easy.y, groups=easy.groups, kind="lr", device="cpu", random_state=0
    )
    assert result.hyperparameters["params"]["solver"] == "torch"
    assert result.metrics.accuracy > 0.9


def test_round_trip_through_serialize_scores_identically(easy):
    model = CoralNetMLP(backend="torch", device="cpu", max_iter=5).fit(easy.X, easy.y)
    loaded = serialize.loads_estimator(serialize.dumps_estimator(model))
    np.testing.assert_array_equal(loaded.predict_proba(easy.X), model.predict_proba(easy.X))


@pytest.mark.slow
def test_stored_model_scores_without_torch(easy, tmp_path):
    """A GPU-trained model holds only NumPy arrays: scoring works where torch cannot load."""
    model = CoralNetMLP(backend="torch", device="cpu", max_iter=5).fit(easy.X, easy.y)
    (tmp_path / "model.bin").write_bytes(serialize.dumps_estimator(model))
    np.save(tmp_path / "X.npy", easy.X[:50])
    np.save(tmp_path / "expected.npy", model.predict_proba(easy.X[:50]))
    script = (
        "import sys, numpy as np\n"
        "class NoTorch:  # any 'import torch' now fails\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from quadrat.classifiers.serialize import loads_estimator\n"
        f"d = {str(tmp_path)!r}\n"
        "m = loads_estimator(open(d + '/model.bin', 'rb').read())\n"
        "p = m.predict_proba(np.load(d + '/X.npy'))\n"
        "np.testing.assert_array_equal(p, np.load(d + '/expected.npy'))\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_bad_devices_are_clear_errors(monkeypatch):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = np.repeat([0, 1], 10)
    with pytest.raises(InputError, match="unknown device 'tpu'") as caught:
        TorchMLPClassifier(device="tpu").fit(X, y)
    assert caught.value.param == "device" and "--" not in str(caught.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        TorchMLPClassifier(device="cuda").fit(X, y)
    assert TorchMLPClassifier(device="auto", max_iter=2).fit(X, y).device_ == "cpu"


def test_one_class_is_refused():
    X = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(TrainingDataError, match="one class"):
        TorchMLPClassifier(device="cpu").fit(X, np.zeros(5))


def test_cli_rejects_unknown_device():
    result = CliRunner().invoke(app, ["train", "--device", "tpu", "-p", "nowhere.db"])
    assert result.exit_code == 1
    assert "--device must be auto, cpu or cuda" in result.output


@pytest.mark.slow
def test_cli_trains_on_device_and_classifies(tmp_path, survey):
    """quadrat train --device cpu: stored, loaded by classify, recorded as the torch MLP."""
    from quadrat import Project

    runner, db = CliRunner(), str(tmp_path / "s.db")

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output

    run("init", db, "--source", "reef", "--labelset", str(survey.labelset_csv))
    run("import", str(survey.annotations_csv), "--images", str(survey.annotated_dir), "-p", db)
    run("import", "--images", str(survey.new_dir), "-p", db)
    run("points", "m_10", "-p", db)
    run("extract", "-p", db)
    assert "validation: accuracy" in run("train", "--device", "cpu", "-p", db)
    assert "20" in run("classify", "--threshold", "0.5", "-p", db)
    with Project.open(db) as project:
        (record,) = project.source().classifiers()
        params = record.hyperparameters["params"]
    assert (params["backend"], params["device"]) == ("torch", "cpu")


@pytest.mark.skipif(not has_cuda, reason="no CUDA GPU")
def test_cuda_training_matches_cpu_accuracy_and_stores_numpy(easy):
    cpu = CoralNetMLP(backend="torch", device="cpu", max_iter=20).fit(easy.X, easy.y)
    gpu = CoralNetMLP(backend="torch", device="cuda", max_iter=20).fit(easy.X, easy.y)
    assert gpu.device_.startswith("cuda")
    assert all(isinstance(w, np.ndarray) for w in gpu.estimator_.coefs_)
    acc_cpu = np.mean(cpu.predict(easy.X) == easy.y)
    acc_gpu = np.mean(gpu.predict(easy.X) == easy.y)
    assert abs(acc_cpu - acc_gpu) < 0.03
    loaded = serialize.loads_estimator(serialize.dumps_estimator(gpu))
    np.testing.assert_array_equal(loaded.predict_proba(easy.X), gpu.predict_proba(easy.X))


def test_chunked_scaler_matches_a_full_fit():
    """The estimators fit their scaler chunk by chunk (memory); statistics are unchanged."""
    from sklearn.preprocessing import StandardScaler

    from quadrat.classifiers.arrays import fit_scaler

    X = np.random.default_rng(4).normal(3.0, 2.0, size=(1000, 6)).astype(np.float32)
    chunked, full = fit_scaler(X, chunk_size=7), StandardScaler().fit(X)
    np.testing.assert_allclose(chunked.mean_, full.mean_, rtol=1e-10)
    np.testing.assert_allclose(chunked.scale_, full.scale_, rtol=1e-10)
    assert chunked.n_samples_seen_ == 1000
