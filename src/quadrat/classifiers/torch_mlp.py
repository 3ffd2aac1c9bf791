"""CoralNet's MLP (and plain logistic regression) trained with PyTorch, on CPU or GPU.

The same network and training rule as scikit-learn's ``MLPClassifier`` as CoralNet uses
it: ReLU hidden layers, a softmax output, Glorot-uniform initial weights, Adam (betas
0.9/0.999, eps 1e-8), an L2 penalty ``alpha / 2 * ||W||^2 / batch`` on the weights (not
the biases), minibatches of ``batch_size`` from a fresh permutation each epoch, and
scikit-learn's stopping rule (stop once the epoch's training loss has failed to improve by
``tol`` for more than ``n_iter_no_change`` epochs in a row, or after ``max_iter`` epochs).
With no hidden layers it is multinomial logistic regression trained the same way.

Why: the features go to the device once as one float32 tensor, each minibatch is an index
slice of a permutation made on the device, and the epoch loss is read back once per epoch,
so a GPU runs the whole fit without a host round trip per step; on CPU it avoids
scikit-learn's per-batch Python/NumPy bookkeeping.

Scoring needs no torch and no GPU: the fitted weights are kept as float32 NumPy arrays
(``coefs_``, ``intercepts_``, as in scikit-learn), so a stored model trained on a GPU
loads and scores on a CPU-only machine, one matrix product per layer per chunk of rows.

Differences from scikit-learn's MLP, all small: two labels get a 2-way softmax (scikit-
learn uses one logistic unit); Adam's eps is added to the bias-corrected root (PyTorch)
rather than the raw one (scikit-learn); the random streams differ, so the two backends
give equally good but not identical networks for one seed.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from quadrat._util import limit_threads, resolve_device
from quadrat.errors import TrainingDataError, missing_dependency

if TYPE_CHECKING:  # torch is imported when training, so loading and scoring stay light
    import torch


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """A ReLU MLP with softmax output trained by Adam in PyTorch (see the module docstring).

    ``hidden_layer_sizes=()`` trains multinomial logistic regression. ``device`` picks
    where training runs ("auto", "cpu", "cuda"); ``device_`` records where it ran. On CPU
    a fixed ``random_state`` gives the same weights on every run. ``threads`` sets
    PyTorch's CPU threads during fit (None: as configured). The default is 1, as the
    other estimators' ``blas_threads``: on a busy shared machine PyTorch's spinning OpenMP
    threads collapse (here, under load, a 50-step fit of a tiny network took 8 s with 2
    threads and under 0.1 s with 1).
    """

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        *,
        alpha: float = 1e-4,
        batch_size: int = 200,
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        device: str = "auto",
        threads: int | None = 1,
        chunk_size: int = 16_384,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.threads = threads
        self.chunk_size = chunk_size
        self.random_state = random_state

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        """Train on (X, y); the data are copied to the device once, as float32."""
        features: np.ndarray
        features, y = validate_data(self, X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise TrainingDataError(
                "need at least 2 classes (got one class) to train a classifier",
                value=self.classes_.tolist(),
            )
        sizes = tuple(int(s) for s in self.hidden_layer_sizes)
        if any(s < 1 for s in sizes):
            raise TrainingDataError("hidden layer sizes must be >= 1", value=sizes)
        if int(self.max_iter) < 1 or int(self.batch_size) < 1:
            raise TrainingDataError(
                "max_iter and batch_size must be >= 1", value=(self.max_iter, self.batch_size)
            )
        try:
            import torch
        except ModuleNotFoundError as exc:  # a core install: no torch
            raise missing_dependency("torch", "cnn", purpose="the PyTorch MLP") from exc

        device = torch.device(resolve_device(self.device))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        threads = None if self.threads is None else max(1, int(self.threads))
        with limit_threads(None, torch_threads=threads):
            layers = self._train(features, y_index.astype(np.int64), sizes, device, seed)
        self.coefs_ = [w.detach().cpu().numpy().T.copy() for w, _ in layers]
        self.intercepts_ = [b.detach().cpu().numpy().copy() for _, b in layers]
        self.hidden_layer_sizes_ = sizes
        self.device_ = str(device)
        return self

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sizes: tuple[int, ...],
        device: torch.device,
        seed: int,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Adam over permuted minibatches; returns (weight, bias) per layer."""
        import torch

        n = X.shape[0]
        widths = (X.shape[1], *sizes, int(self.classes_.size))
        init = torch.Generator().manual_seed(seed)
        layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            # Glorot uniform for ReLU, as scikit-learn: U(-b, b), b = sqrt(6 / (in + out)).
            bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
            weight = (torch.rand(fan_out, fan_in, generator=init) * 2 - 1) * bound
            bias = (torch.rand(fan_out, generator=init) * 2 - 1) * bound
            layers.append((weight.to(device).requires_grad_(), bias.to(device).requires_grad_()))
        # The L2 gradient alpha * W / batch is Adam's weight_decay (added to the gradient
        # before the moments, as scikit-learn does), on the weights only, not the biases.
        weights = [w for w, _ in layers]
        biases = [b for _, b in layers]
        optimizer = torch.optim.Adam(
            [{"params": weights, "weight_decay": 0.0}, {"params": biases, "weight_decay": 0.0}],
            lr=float(self.learning_rate_init),
            betas=(0.9, 0.999),
            eps=1e-8,
            fused=True,  # one kernel per step for all parameters, CPU or CUDA
        )
        features = torch.from_numpy(X).to(device)  # no copy on CPU
        targets = torch.from_numpy(y).to(device)
        shuffle = torch.Generator(device=device).manual_seed(seed)
        batch = int(self.batch_size)
        half_alpha = 0.5 * float(self.alpha)

        self.loss_curve_: list[float] = []
        self.best_loss_ = np.inf
        no_improvement = 0
        self.n_iter_ = 0
        for _epoch in range(int(self.max_iter)):
            order = torch.randperm(n, generator=shuffle, device=device)
            total = torch.zeros((), device=device)
            for start in range(0, n, batch):
                index = order[start : start + batch]
                hidden = torch.index_select(features, 0, index)  # faster than [index]
                for weight, bias in layers[:-1]:
                    hidden = torch.relu(torch.addmm(bias, hidden, weight.T))
                logits = torch.addmm(layers[-1][1], hidden, layers[-1][0].T)
                labels = torch.index_select(targets, 0, index)
                loss = torch.nn.functional.cross_entropy(logits, labels)
                with torch.no_grad():  # the recorded loss includes the penalty, as sklearn's
                    penalty = half_alpha * sum(w.square().sum() for w in weights)
                optimizer.param_groups[0]["weight_decay"] = float(self.alpha) / index.shape[0]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += (loss.detach() + penalty / index.shape[0]) * index.shape[0]
            self.n_iter_ += 1
            self.loss_ = float(total.item()) / n  # one device sync per epoch
            self.loss_curve_.append(self.loss_)
            if not np.isfinite(self.loss_):
                raise TrainingDataError(
                    f"training diverged (loss {self.loss_}) at epoch {self.n_iter_}; "
                    "lower learning_rate_init",
                    value=self.learning_rate_init,
                )
            # scikit-learn's rule: count epochs that fail to beat the best loss by tol.
            no_improvement = no_improvement + 1 if self.loss_ > self.best_loss_ - self.tol else 0
            self.best_loss_ = min(self.best_loss_, self.loss_)
            if no_improvement > int(self.n_iter_no_change):
                break
        return layers

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Softmax probabilities (n, n_classes) in NumPy, chunk by chunk; no torch needed."""
        check_is_fitted(self, "coefs_")
        data: np.ndarray = validate_data(
            self, X, reset=False, dtype=(np.float32, np.float64, np.float16)
        )
        out = np.empty((data.shape[0], self.classes_.size), dtype=np.float64)
        step = max(1, int(self.chunk_size))
        last = len(self.coefs_) - 1
        for start in range(0, data.shape[0], step):
            rows = np.asarray(data[start : start + step], dtype=np.float32)
            n_rows = rows.shape[0]
            # A lone row would take BLAS's matrix-vector path, whose float32 rounding
            # differs from the matrix-matrix one: score it as two rows so that a point's
            # scores never depend on how many points it is scored with.
            hidden = np.repeat(rows, 2, axis=0) if n_rows == 1 else rows
            for layer, (weight, bias) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
                hidden = hidden @ weight
                hidden += bias
                if layer < last:
                    np.maximum(hidden, 0.0, out=hidden)
            out[start : start + n_rows] = softmax(hidden[:n_rows].astype(np.float64), axis=1)
        return out

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """The most probable label per point."""
        proba = self.predict_proba(X)  # first: raises NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # GPU kernels (atomics in backward) are not bit-reproducible; CPU runs are.
        tags.non_deterministic = str(self.device) != "cpu"
        return tags
