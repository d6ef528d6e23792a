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
    grid = np.ones(
        (rows * (height + pad) + pad, columns * (width + pad) + pad, channels), np.float32
    )
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


def save_completions(
    originals: Any, observed: Any, completions: Any, path: str, title: str | None = None
) -> str:
    """Save one row per example: the original, the observed part, then each completion.

    Args:
      originals: ``[N, H, W(, C)]`` images in [0, 1].
      observed: ``[N, H, W(, C)]`` bools (True = observed); missing entries show as a
        checkerboard of 0.25 / 0.75 grey in the second column.
      completions: ``[K, N, H, W(, C)]``.
      path: the ``.png`` to write.
      title: optional title.

    Raises:
      ValueError: the examples are not images (2-D or 3-D events).
    """
    plt = _pyplot()
    originals = np.asarray(originals, np.float32)
    observed = np.asarray(observed, bool)
    completions = np.asarray(completions, np.float32)
    if originals.ndim not in (3, 4):
        raise ValueError(
            f"completion pictures need images [N, H, W(, C)], got {originals.shape}; "
            "write an .npy instead"
        )
    height, width = originals.shape[1:3]
    checker = (np.add.outer(np.arange(height), np.arange(width)) % 2) * 0.5 + 0.25
    checker = checker.reshape((height, width) + (1,) * (originals.ndim - 3))
    masked = np.where(observed, originals, checker)
    columns = [originals, masked, *completions]  # each [N, ...]
    tiles = np.stack(columns, axis=1).reshape(-1, *originals.shape[1:])
    grid = image_grid(tiles, columns=len(columns))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig, ax = plt.subplots(figsize=(1.0 * len(columns) + 1, 1.0 * len(originals) + 1))
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Return the bias-corrected exponential moving average of ``values`` (TensorBoard's smoothing).

    ``m_i = w m_{i-1} + (1 - w) v_i``, reported as ``m_i / (1 - w^(i+1))`` so early points are
    not pulled towards 0.
    """
    out, mean = [], 0.0
    for i, value in enumerate(values):
        mean = weight * mean + (1.0 - weight) * float(value)
        out.append(mean / (1.0 - weight ** (i + 1)))
    return out


# Units of the metrics a loss plot may show (nats per example unless said otherwise).
_UNITS = {
    "bits_per_dim": "bits/dim",
    "nll": "nats",
    "elbo": "nats",
    "kl": "nats",
    "recon": "nats",
    "bound_nats": "nats",
}


def save_loss_curve(history: Sequence[dict[str, Any]], path: str, key: str = "loss") -> str:
    """Plot ``key`` against ``step``: the raw curve, faint, under a smoothed one; save a PNG.

    The y-axis names the metric and its unit (``bits_per_dim`` when the records have it, as a
    second panel; the loss is in nats for likelihood losses).
    """
    plt = _pyplot()
    panels = [key] + (
        ["bits_per_dim"] if any(r.get("bits_per_dim") is not None for r in history) else []
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        steps = [r["step"] for r in history if r.get(name) is not None]
        values = [r[name] for r in history if r.get(name) is not None]
        ax.plot(steps, values, color="C0", alpha=0.3, linewidth=1, label="raw")
        if len(values) > 2:
            ax.plot(steps, smooth(values), color="C0", linewidth=2, label="smoothed (EMA 0.9)")
            ax.legend(loc="upper right")
        unit = _UNITS.get(name) or (
            "nats" if name == "loss" and any("nll" in r for r in history) else None
        )
        ax.set_xlabel("step")
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
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
