"""Plots: sample grids for images, scatter plots for 2-D data, loss curves."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile ``[N, H, W, C]`` (or ``[N, H, W]``) images in [0, 1] into one ``[H', W', C]`` array."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {images.shape}")
    num, height, width, channels = images.shape
    columns = columns or int(math.ceil(math.sqrt(num)))
    rows = int(math.ceil(num / columns))
    grid = np.ones((rows * (height + pad) + pad, columns * (width + pad) + pad, channels), np.float32)
    for i in range(num):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        grid[top : top + height, left : left + width] = np.clip(images[i], 0.0, 1.0)
    return grid


def save_samples(samples: Any, path: str, title: str | None = None) -> str:
    """Save samples as a PNG: an image grid for ``[N, H, W, C]``, a scatter plot for ``[N, 2]``."""
    plt = _pyplot()
    samples = np.asarray(samples)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if samples.ndim == 2 and samples.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
        ax.set_aspect("equal")
    else:
        if samples.ndim == 2:  # flat vectors: try a square image
            side = int(round(math.sqrt(samples.shape[1])))
            if side * side != samples.shape[1]:
                raise ValueError(f"cannot plot samples of shape {samples.shape}")
            samples = samples.reshape(-1, side, side, 1)
        grid = image_grid(samples)
        fig, ax = plt.subplots(figsize=(6, 6))
        ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def save_loss_curve(history: Sequence[dict[str, Any]], path: str, key: str = "loss") -> str:
    """Plot ``key`` against ``step`` from logged metric records and save it as a PNG."""
    plt = _pyplot()
    steps = [r["step"] for r in history if r.get(key) is not None]
    values = [r[key] for r in history if r.get(key) is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, values)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _save(fig: Any, path: str) -> None:
    """Write atomically so an interrupted run never leaves a half-written PNG."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    fig.savefig(tmp, dpi=100, format="png")
    os.replace(tmp, path)
