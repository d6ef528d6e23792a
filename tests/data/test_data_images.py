"""digits and mnist5k: shapes, levels, stratified deterministic disjoint splits."""

import numpy as np
import pytest

from genjax_models.data import load_digits_dataset, load_mnist5k, stratified_split


@pytest.mark.parametrize(
    "loader, shape, levels, num_test",
    [(load_digits_dataset, (8, 8, 1), 17, 359), (load_mnist5k, (28, 28, 1), 256, 1000)],
)
def test_shapes_levels_and_stratified_split(loader, shape, levels, num_test):
    ds = loader()
    assert ds.event_shape == shape and ds.is_image
    assert ds.num_levels == levels
    assert ds.train.dtype == np.float32 and ds.test.dtype == np.float32
    assert ds.train_labels.dtype == np.int32 and ds.test_labels.dtype == np.int32
    assert len(ds.test) == num_test
    for x in (ds.train, ds.test):
        assert x.min() == 0 and x.max() == levels - 1
        np.testing.assert_array_equal(x, np.round(x))
    labels = np.concatenate([ds.train_labels, ds.test_labels])
    totals = np.bincount(labels, minlength=10)
    test_counts = np.bincount(ds.test_labels, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * totals) <= 1)


def test_mnist5k_is_exactly_400_100_per_class():
    ds = load_mnist5k()
    assert ds.train.shape[0] == 4000
    np.testing.assert_array_equal(np.bincount(ds.test_labels), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(ds.train_labels), np.full(10, 400))


def test_split_is_deterministic_and_disjoint():
    from sklearn.datasets import load_digits

    y = load_digits().target
    tr1, te1 = stratified_split(y, 0.2, seed=0)
    tr2, te2 = stratified_split(y, 0.2, seed=0)
    np.testing.assert_array_equal(tr1, tr2)
    np.testing.assert_array_equal(te1, te2)
    assert not set(tr1) & set(te1)
    assert len(tr1) + len(te1) == len(y)
    _, te_other = stratified_split(y, 0.2, seed=1)
    assert not np.array_equal(te1, te_other)
    # the loaded dataset uses this exact split
    ds = load_digits_dataset()
    np.testing.assert_array_equal(ds.test_labels, y[te1])
    np.testing.assert_array_equal(ds.test[..., 0], load_digits().images[te1])


def test_cached_arrays_are_read_only():
    ds = load_digits_dataset()
    assert load_digits_dataset() is ds
    with pytest.raises(ValueError):
        ds.train[0, 0, 0, 0] = 1.0
