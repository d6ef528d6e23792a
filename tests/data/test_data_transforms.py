"""prepare(): binarisation, dequantisation, specs, validation errors."""

import dataclasses
import math

import jax
import numpy as np
import pytest

from genjax_models.data import (
    binarize_dynamic,
    dequantize_uniform,
    load_dataset,
    prepare,
)
from genjax_models.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_none_is_exact_grey_grid(digits):
    p = prepare(digits)
    assert p.spec.data_type == "grey" and p.spec.num_levels == 17 and p.spec.log_jacobian == 0
    np.testing.assert_array_equal(p.train * 16, digits.train)
    np.testing.assert_array_equal(p.test * 16, digits.test)
    assert p.preprocessing == {
        "binarize": "none",
        "eval_binarize": "none",
        "dequantize": "none",
        "eval_seed": 0,
    }


def test_dynamic_binarization(digits):
    p = prepare(digits, binarize="dynamic", eval_seed=5)
    assert p.spec.data_type == "binary" and p.spec.num_levels == 2
    assert p.preprocessing["eval_binarize"] == "static(5)"
    np.testing.assert_allclose(p.train, digits.train / 16)
    step = jax.jit(p.train_transform)
    b1 = np.asarray(step(p.train, jax.random.key(1)))
    b2 = np.asarray(step(p.train, jax.random.key(2)))
    assert set(np.unique(b1)) <= {0.0, 1.0}
    assert not np.array_equal(b1, b2)
    np.testing.assert_array_equal(b1, np.asarray(step(p.train, jax.random.key(1))))
    # mean over many draws matches x/(L-1)
    keys = jax.random.split(jax.random.key(0), 64)
    draws = jax.vmap(lambda k: binarize_dynamic(p.train[:200], k))(keys)
    mean = np.asarray(draws).mean(0)
    assert np.abs(mean - p.train[:200]).max() < 0.35
    assert abs(mean.mean() - p.train[:200].mean()) < 0.01
    # test split: one fixed binarisation, identical to static(eval_seed)
    assert set(np.unique(p.test)) <= {0.0, 1.0}
    np.testing.assert_array_equal(p.test, prepare(digits, binarize="static(5)").test)
    np.testing.assert_array_equal(p.test, prepare(digits, binarize="dynamic", eval_seed=5).test)


def test_static_binarization_is_fixed(digits):
    a = prepare(digits, binarize="static(3)")
    b = prepare(digits, binarize=" static( 3 ) ")
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    assert a.preprocessing["binarize"] == a.preprocessing["eval_binarize"] == "static(3)"
    assert not np.array_equal(a.train, prepare(digits, binarize="static(4)").train)
    np.testing.assert_array_equal(a.train_transform(a.train, jax.random.key(0)), a.train)
    assert abs(a.train.mean() - (digits.train / 16).mean()) < 0.01
    # pixels at level 0 stay 0, pixels at the top level stay 1
    assert np.all(a.train[digits.train == 0] == 0) and np.all(a.train[digits.train == 16] == 1)


def test_threshold_is_exact(digits):
    p = prepare(digits, binarize="threshold(7.5)")
    np.testing.assert_array_equal(p.train, (digits.train > 7.5).astype(np.float32))
    np.testing.assert_array_equal(p.test, (digits.test > 7.5).astype(np.float32))
    assert p.preprocessing["binarize"] == "threshold(7.5)"
    assert p.spec.data_type == "binary" and p.spec.log_jacobian == 0


def test_uniform_dequantization(digits):
    p = prepare(digits, dequantize="uniform", eval_seed=1)
    d = 64
    assert p.spec.data_type == "continuous" and p.spec.num_levels == 17
    assert math.isclose(p.spec.log_jacobian, -d * math.log(17))
    np.testing.assert_array_equal(p.train, digits.train)  # raw levels, noise per step
    y = np.asarray(jax.jit(p.train_transform)(p.train, jax.random.key(0)))
    assert y.min() >= 0 and y.max() < 1
    np.testing.assert_array_equal(np.floor(y * 17), digits.train)  # stays in its bin
    assert abs((y * 17 - digits.train).mean() - 0.5) < 0.01
    for t in (p.test, prepare(digits, dequantize="uniform", eval_seed=1).test):
        assert t.min() >= 0 and t.max() < 1
        np.testing.assert_array_equal(np.floor(t * 17), digits.test)
    np.testing.assert_array_equal(p.test, prepare(digits, dequantize="uniform", eval_seed=1).test)
    assert p.train_eval.shape == p.train.shape and p.train_eval.max() < 1


def test_dequantize_helper_top_level_stays_below_one():
    levels = np.full((4096,), 255.0, np.float32)
    y = np.asarray(dequantize_uniform(levels, jax.random.key(0), 256))
    assert y.max() < 1.0 and y.min() >= 255 / 256


def test_continuous_data_rejects_binarize_and_dequantize():
    toy = load_dataset("checkerboard")
    p = prepare(toy)
    assert p.spec.data_type == "continuous" and p.spec.num_levels is None
    np.testing.assert_array_equal(p.train, toy.train)
    for kwargs in ({"binarize": "dynamic"}, {"dequantize": "uniform"}):
        with pytest.raises(ConfigError, match="continuous"):
            prepare(toy, **kwargs)


@pytest.mark.parametrize("bad", ["static", "static(-1)", "threshold()", "dyn", "static(a)"])
def test_bad_binarize_string_lists_forms(digits, bad):
    with pytest.raises(ConfigError, match=r"static\(SEED\).*threshold\(T\)"):
        prepare(digits, binarize=bad)


def test_bad_combinations(digits):
    with pytest.raises(ConfigError, match="dequantize"):
        prepare(digits, dequantize="gaussian")
    with pytest.raises(ConfigError, match="cannot be combined"):
        prepare(digits, binarize="dynamic", dequantize="uniform")


def test_nan_and_out_of_range_data_raise(digits):
    train = digits.train.copy()
    train[0, 0, 0, 0] = np.nan
    train[1, 0, 0, 0] = np.inf
    with pytest.raises(DataError, match=r"train split holds 2 NaN/inf"):
        prepare(dataclasses.replace(digits, train=train))
    test = digits.test.copy()
    test[0, 0, 0, 0] = 17.0
    with pytest.raises(DataError, match=r"test split holds 1 value\(s\) outside 0..16"):
        prepare(dataclasses.replace(digits, test=test))
    test[0, 0, 0, 0] = 2.5
    with pytest.raises(DataError, match="non-integer"):
        prepare(dataclasses.replace(digits, test=test))
    toy = load_dataset("two-moons")
    bad = toy.test.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="test split holds 1 NaN"):
        prepare(dataclasses.replace(toy, test=bad))
