"""load_dataset / list_datasets."""

import pytest

from genjax_models.data import list_datasets, load_dataset
from genjax_models.errors import ConfigError, UnknownNameError

NAMES = [
    "digits",
    "mnist5k",
    "eight-gaussians",
    "checkerboard",
    "two-moons",
    "mnist",
    "fashion-mnist",
]


def test_list_datasets():
    listed = list_datasets()
    assert sorted(listed) == sorted(NAMES)
    assert all(isinstance(d, str) and d and "\n" not in d for d in listed.values())


def test_unknown_name_lists_choices():
    with pytest.raises(UnknownNameError) as info:
        load_dataset("cifar11")
    msg = str(info.value)
    assert "cifar11" in msg and all(n in msg for n in NAMES) and ".npz" in msg


def test_unknown_options():
    with pytest.raises(ConfigError, match="takes no options.*data_dir"):
        load_dataset("digits", data_dir="/tmp")
    with pytest.raises(ConfigError, match="takes only data_dir.*split"):
        load_dataset("mnist", split="train")


@pytest.mark.smoke
def test_names_load():
    assert load_dataset("digits").name == "digits"
    assert load_dataset("Eight_Gaussians").name == "eight-gaussians"
