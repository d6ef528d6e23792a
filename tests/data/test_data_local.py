"""Local loaders: IDX (plain and .gz), .npz, tfds fallback, and their errors."""

import gzip
import struct
import sys
import types

import numpy as np
import pytest

from genjax_models.data import load_dataset, load_local, load_npz, read_idx
from genjax_models.errors import DataError


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(directory, rng, gz, n_train=12, n_test=5):
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,)),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,)),
    }
    for i, (stem, arr) in enumerate(arrays.items()):
        data = _idx_bytes(arr)
        use_gz = gz if isinstance(gz, bool) else i % 2 == 0  # "mixed": some of each
        if use_gz:
            (directory / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True, "mixed"])
def test_load_local_idx(tmp_path, gz):
    arrays = _write_mnist(tmp_path, np.random.default_rng(0), gz)
    ds = load_local("mnist", tmp_path)
    assert ds.name == "mnist" and ds.num_levels == 256
    assert ds.train.shape == (12, 28, 28, 1) and ds.test.shape == (5, 28, 28, 1)
    assert ds.train.dtype == np.float32 and ds.train_labels.dtype == np.int32
    np.testing.assert_array_equal(ds.train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_registry_finds_subfolder_and_env(tmp_path, monkeypatch):
    _write_mnist(tmp_path / "fashion-mnist", np.random.default_rng(1), True)
    assert load_dataset("fashion-mnist", data_dir=tmp_path).train.shape[0] == 12
    monkeypatch.setenv("GENJAX_DATA_DIR", str(tmp_path))
    assert load_dataset("fashion_mnist").name == "fashion-mnist"
    monkeypatch.delenv("GENJAX_DATA_DIR")
    with pytest.raises(DataError, match="GENJAX_DATA_DIR"):
        load_dataset("mnist")


def test_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # tfds not importable
    with pytest.raises(DataError) as info:
        load_local("mnist", tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "train-images-idx3-ubyte" in msg
    assert "t10k-labels-idx1-ubyte" in msg and "downloaded" in msg


def test_corrupted_idx(tmp_path):
    good = _idx_bytes(np.zeros((3, 4, 4)))
    (tmp_path / "magic").write_bytes(b"\x01\x02" + good[2:])
    (tmp_path / "short").write_bytes(good[:-5])
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "magic")
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")
    arrays = _write_mnist(tmp_path / "d", np.random.default_rng(2), False)
    stem = tmp_path / "d" / "t10k-images-idx3-ubyte"
    stem.write_bytes(_idx_bytes(arrays["t10k-images-idx3-ubyte"])[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_local("mnist", tmp_path / "d")


def test_tfds_fallback_without_download(tmp_path, monkeypatch):
    calls = {}

    def fake_load(name, split, data_dir, download, batch_size):
        calls.update(name=name, download=download, data_dir=data_dir)
        make = lambda n: {"image": np.ones((n, 28, 28, 1), np.uint8), "label": np.zeros(n)}  # noqa: E731
        return [make(4), make(2)]

    fake = types.SimpleNamespace(load=fake_load, as_numpy=lambda x: x)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    ds = load_local("fashion-mnist", tmp_path)
    assert calls == {"name": "fashion_mnist", "download": False, "data_dir": str(tmp_path)}
    assert ds.train.shape == (4, 28, 28, 1) and ds.test_labels.dtype == np.int32


def test_load_npz_images_and_points(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 6, 6)).astype(np.uint8)
    path = tmp_path / "imgs.npz"
    np.savez(path, x_train=x, y_train=np.arange(10), x_test=x[:4].astype(np.float64))
    ds = load_dataset(str(path))
    assert ds.name == str(path) and ds.num_levels == 256
    assert ds.train.shape == (10, 6, 6, 1) and ds.test.shape == (4, 6, 6, 1)
    assert ds.train_labels.dtype == np.int32 and ds.test_labels is None
    pts = tmp_path / "pts.npz"
    np.savez(pts, x_train=rng.normal(size=(20, 3)), x_test=rng.normal(size=(5, 3)))
    cont = load_npz(pts)
    assert cont.num_levels is None and cont.event_shape == (3,)


def test_load_npz_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_npz(tmp_path / "absent.npz")
    p = tmp_path / "partial.npz"
    np.savez(p, x_train=np.zeros((3, 2)))
    with pytest.raises(DataError, match="x_test"):
        load_npz(p)
    nan = np.zeros((3, 2))
    nan[1, 1] = np.nan
    q = tmp_path / "nan.npz"
    np.savez(q, x_train=nan, x_test=np.zeros((2, 2)))
    with pytest.raises(DataError, match="train split holds 1 NaN"):
        load_npz(q)
    r = tmp_path / "range.npz"
    np.savez(r, x_train=np.full((3, 4, 4), 300.0), x_test=np.zeros((2, 4, 4)))
    with pytest.raises(DataError, match="outside 0..255"):
        load_npz(r)
