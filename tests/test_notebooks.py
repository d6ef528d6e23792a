"""The Colab notebooks: their setup cell, and a run of each on CPU in its fast mode.

The notebooks are read into memory and executed there (in a temporary working directory), so
the outputs stored in the committed files are neither used nor overwritten.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def _setup_source(path: Path) -> str:
    """The source of a notebook's setup cell (the first code cell, which defines ``REPO``)."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "REPO" in code[0].source, (
        f"{path.name}: the first code cell is not the setup cell"
    )
    return code[0].source


def _run_setup(source: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # -I -S: no site-packages and no PYTHONPATH, so genjax_models is importable only if the cell
    # finds the checkout; find_spec locates the package without importing jax.
    script = source + "\nprint(importlib.util.find_spec('genjax_models').origin)\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        cwd=ROOT / "colab",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "COLAB_RELEASE_TAG"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_setup_cell_finds_the_checkout_from_colab_dir(path):
    result = _run_setup(_setup_source(path), _clean_env())
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]) == ROOT / "genjax_models" / "__init__.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_setup_cell_on_colab_asks_for_repo(path):
    result = _run_setup(_setup_source(path), {**_clean_env(), "COLAB_RELEASE_TAG": "test"})
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr and "set REPO" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_fast_mode(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)  # an in-memory copy: the file is left as it is
    # the setup cell runs too (with genjax_models importable it installs nothing); cells tagged
    # skip-ci, if any, are dropped
    nb.cells = [c for c in nb.cells if "skip-ci" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    assert any(c.cell_type == "code" for c in nb.cells)
    monkeypatch.setenv("GENJAX_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
