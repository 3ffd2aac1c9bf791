"""CoralNet's training policy, exhaustively against integer arithmetic."""

from __future__ import annotations

import dataclasses
import math

import pytest

from quadrat.classifiers.policy import TrainingPolicy
from quadrat.errors import InputError

POLICY = TrainingPolicy()


def test_defaults():
    assert (POLICY.min_images, POLICY.retrain_factor, POLICY.accept_factor) == (20, 1.1, 1.01)


def test_first_classifier_at_20_confirmed_images():
    assert not POLICY.should_train(0, None)
    assert not POLICY.should_train(19, None)
    assert POLICY.should_train(20, None)
    assert POLICY.should_train(500, None)


def test_float_trap_ceil_of_1_1_times_50_is_55():
    assert math.ceil(1.1 * 50) == 56  # the trap: 1.1 * 50 == 55.00000000000001
    assert POLICY.next_count(50) == 55
    assert not POLICY.should_train(54, 50)
    assert POLICY.should_train(55, 50)
    assert POLICY.next_count(20) == 22


def test_retrain_threshold_exhaustive():
    for last in range(1, 20_001):
        expected = max(20, (11 * last + 9) // 10)  # ceil(11 * last / 10) in integers
        assert POLICY.next_count(last) == expected, last
        assert not POLICY.should_train(expected - 1, last)
        assert POLICY.should_train(expected, last)


@pytest.mark.parametrize(
    ("factor", "last", "expected"),
    [(1.25, 40, 50), (1.25, 41, 52), (1.0, 30, 30), (2.0, 25, 50), (1.3, 100, 130)],
)
def test_other_retrain_factors(factor, last, expected):
    assert TrainingPolicy(retrain_factor=factor).next_count(last) == expected


def test_retrain_never_before_min_images():
    assert TrainingPolicy(min_images=50).next_count(10) == 50


def test_accept_first_classifier_always():
    assert POLICY.should_accept(0.0, None)
    assert POLICY.should_accept(0.42, None)


def test_accept_boundaries():
    assert POLICY.should_accept(0.505, 0.5)  # exactly 1.01 x
    assert not POLICY.should_accept(0.5049, 0.5)
    assert POLICY.should_accept(0.8, 0.5)
    assert not POLICY.should_accept(0.5, 0.5)
    assert POLICY.should_accept(0.0, 0.0)
    assert POLICY.should_accept(1.0, 0.99)
    assert not POLICY.should_accept(1.0, 0.991)  # would need 1.00091


def test_accept_exhaustive_on_thousandths():
    # accuracies a/1000 vs b/1000: accept iff 100 a >= 101 b
    for a in range(0, 1001, 3):
        for b in range(0, 1001, 7):
            assert POLICY.should_accept(a / 1000, b / 1000) == (100 * a >= 101 * b), (a, b)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_images": 0},
        {"min_images": 2.5},
        {"min_images": True},
        {"retrain_factor": 0.9},
        {"retrain_factor": float("nan")},
        {"accept_factor": 0.0},
        {"accept_factor": float("inf")},
    ],
)
def test_invalid_policies(kwargs):
    with pytest.raises(InputError):
        TrainingPolicy(**kwargs)


@pytest.mark.parametrize(("n", "last"), [(-1, None), (5, -3), (2.5, None), (True, None), (10, 1.5)])
def test_invalid_counts(n, last):
    with pytest.raises(InputError):
        POLICY.should_train(n, last)


@pytest.mark.parametrize(("new", "previous"), [(1.2, None), (-0.1, 0.5), (0.5, float("nan"))])
def test_invalid_accuracies(new, previous):
    with pytest.raises(InputError):
        POLICY.should_accept(new, previous)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.min_images = 3  # type: ignore[misc]
