"""Compile time and step time of a deep NSF: ``lax.scan`` over stacked layers vs ``distrax.Chain``.

What it measures: an NSF (RQ-spline couplings, K = 8 bins, MLP conditioners 64-64, LU
mixing) on ``eight-gaussians`` (D = 2, batch 256) at L = 8, 32 and 64 layers, built twice
from the same parameters: ``use_scan=True`` (one :class:`ScanChain`, the layer body traced
once) and ``use_scan=False`` (an unrolled ``distrax.Chain`` of L layers). The timed function
is one full training step, jitted: ``loss`` (exact NLL) + ``grad`` + an optax Adam update.

* Compile time: wall time of ``jax.jit(step).lower(...)`` (tracing + lowering) and of
  ``.compile()`` (XLA), each on a fresh function object (no compiled executable of it is
  cached); ``compile_total_s`` is their sum and is what the ratios use. An untimed L = 2
  compile of each kind runs first, so one-off process costs (XLA start-up, the trace of the
  jitted spline helper, which jax caches per shape) are not charged to the first case.
* Step time: the compiled step is called on the same arguments (no donation); each
  measurement round times scan and chain back to back (best of ``calls`` calls each), and
  the reported scan/chain ratio is the median over rounds of the per-round ratio, so load
  from other processes on the shared cores affects both sides alike.

Goal: 32 layers (scan) compile within 1.5x the 8-layer (scan) compile time. Reported:
``compile_ratio_32_over_8`` and ``compile_ratio_64_over_8`` for scan and chain, and
``step_ms_ratio_scan_over_chain`` per depth. The 64-layer chain is compiled once.

Run (from the repo root):
    python experiments/bench/flows_depth.py           # writes experiments/results/flows_depth.json
    python experiments/bench/flows_depth.py --quick   # smoke run (L = 1, 2, 4), *_quick.json
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from common import parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

BATCH = 256
MODEL = {"hidden": (64, 64), "num_bins": 8, "bound": 4.0, "mixing": "lu"}
GOAL_RATIO_32_OVER_8 = 1.5


def make_step(model, optimizer):
    """Return a fresh (uncached) training step ``(params, opt_state, x, key) -> (..., loss)``."""

    def step(params, opt_state, x, key):
        (loss, _), grads = jax.value_and_grad(model.loss, has_aux=True)(params, x, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def compile_case(num_layers: int, use_scan: bool, spec, x, key) -> dict[str, Any]:
    """Build, lower and compile one case; return its timings and the compiled step."""
    model = get_model("nsf", spec, num_layers=num_layers, use_scan=use_scan, **MODEL)
    params = model.init(jax.random.key(0), x)  # same params for scan and chain
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    jitted = jax.jit(make_step(model, optimizer))
    t0 = time.perf_counter()
    lowered = jitted.lower(params, opt_state, x, key)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    args = (params, opt_state, x, key)
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    first_call_s = time.perf_counter() - start
    loss = float(out[2])
    return {
        "num_layers": num_layers,
        "use_scan": use_scan,
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "compile_total_s": t2 - t0,
        "first_call_s": first_call_s,
        "hlo_text_chars": len(lowered.as_text()),
        "initial_loss": loss,
        "_compiled": compiled,
        "_args": args,
    }


def _best_call(compiled, args, calls: int) -> float:
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return best


def time_pair(
    scan: dict[str, Any], chain: dict[str, Any], rounds: int, calls: int
) -> dict[str, Any]:
    """Interleaved rounds: best-of-``calls`` scan, then chain; per-round ratio scan / chain."""
    for case in (scan, chain):  # warm-up
        _best_call(case["_compiled"], case["_args"], 2)
    scan_t, chain_t, ratios = [], [], []
    for _ in range(rounds):
        s = _best_call(scan["_compiled"], scan["_args"], calls)
        c = _best_call(chain["_compiled"], chain["_args"], calls)
        scan_t.append(s)
        chain_t.append(c)
        ratios.append(s / c)
    return {
        "scan_ms_per_step_median": 1e3 * statistics.median(scan_t),
        "chain_ms_per_step_median": 1e3 * statistics.median(chain_t),
        "scan_ms_per_step_best": 1e3 * min(scan_t),
        "chain_ms_per_step_best": 1e3 * min(chain_t),
        "step_ms_ratio_scan_over_chain": statistics.median(ratios),
        "ratio_rounds": ratios,
        "rounds": rounds,
        "calls_per_round": calls,
    }


def main() -> None:
    args = parse_args(__doc__)
    depths = (1, 2, 4) if args.quick else (8, 32, 64)
    rounds, calls = (2, 3) if args.quick else (7, 10)
    t0 = time.perf_counter()
    prepared = prepare(load_dataset("eight-gaussians"))
    x = jnp.asarray(prepared.train[:BATCH])
    key = jax.random.key(1)
    # Untimed warm-up compile (2 layers, both kinds): the first compilation in a process also
    # pays one-off costs (JAX/XLA initialisation, tracing of shared helpers such as the jitted
    # spline), which would otherwise inflate whichever case is measured first.
    warmup_t0 = time.perf_counter()
    for use_scan in (True, False):
        compile_case(2, use_scan, prepared.spec, x, key)
    warmup_s = time.perf_counter() - warmup_t0
    print(f"warm-up compiles (L=2, scan + chain): {warmup_s:.1f}s", flush=True)
    cases: dict[tuple[int, bool], dict[str, Any]] = {}
    for num_layers in depths:
        for use_scan in (True, False):
            case = compile_case(num_layers, use_scan, prepared.spec, x, key)
            cases[(num_layers, use_scan)] = case
            kind = "scan " if use_scan else "chain"
            print(
                f"L={num_layers:3d} {kind}: lower {case['lower_s']:6.2f}s compile "
                f"{case['compile_s']:6.2f}s total {case['compile_total_s']:6.2f}s "
                f"loss {case['initial_loss']:.4f}",
                flush=True,
            )
        scan, chain = cases[(num_layers, True)], cases[(num_layers, False)]
        if abs(scan["initial_loss"] - chain["initial_loss"]) > 1e-3 * max(
            1.0, abs(scan["initial_loss"])
        ):
            print(f"WARNING: scan and chain losses differ at L={num_layers}", flush=True)
        timing = time_pair(scan, chain, rounds, calls)
        scan["timing"] = chain["timing"] = timing
        print(
            f"L={num_layers:3d} ms/step scan {timing['scan_ms_per_step_median']:.2f} chain "
            f"{timing['chain_ms_per_step_median']:.2f} ratio scan/chain "
            f"{timing['step_ms_ratio_scan_over_chain']:.3f}",
            flush=True,
        )
        for case in (scan, chain):  # free the executables before the next depth
            case.pop("_compiled")
            case.pop("_args")

    base, mid, deep = depths
    summary: dict[str, Any] = {"depths": list(depths)}
    for use_scan, kind in ((True, "scan"), (False, "chain")):
        c = {d: cases[(d, use_scan)]["compile_total_s"] for d in depths}
        summary[f"{kind}_compile_total_s"] = {str(d): c[d] for d in depths}
        summary[f"{kind}_compile_ratio_{mid}_over_{base}"] = c[mid] / c[base]
        summary[f"{kind}_compile_ratio_{deep}_over_{base}"] = c[deep] / c[base]
    for d in depths:
        t = cases[(d, True)]["timing"]
        summary[f"L{d}"] = {
            "scan_ms_per_step": t["scan_ms_per_step_median"],
            "chain_ms_per_step": t["chain_ms_per_step_median"],
            "step_ms_ratio_scan_over_chain": t["step_ms_ratio_scan_over_chain"],
            "compile_ratio_chain_over_scan": (
                cases[(d, False)]["compile_total_s"] / cases[(d, True)]["compile_total_s"]
            ),
        }
    summary["goal_scan_compile_ratio_32_over_8"] = GOAL_RATIO_32_OVER_8
    if not args.quick:
        summary["meets_goal"] = summary["scan_compile_ratio_32_over_8"] <= GOAL_RATIO_32_OVER_8
    print({k: v for k, v in summary.items() if "ratio" in k or k == "meets_goal"}, flush=True)
    payload = {
        "description": (
            "NSF training step: compile time and ms/step vs depth, lax.scan vs distrax.Chain"
        ),
        "quick": args.quick,
        "setup": {
            "model": "nsf",
            **{k: list(v) if isinstance(v, tuple) else v for k, v in MODEL.items()},
            "data": "eight-gaussians",
            "batch_size": BATCH,
            "optimizer": "adam(1e-3)",
            "step": "value_and_grad(model.loss) + adam update, jitted, no donation",
        },
        "summary": summary,
        "cases": [
            {k: v for k, v in case.items() if not k.startswith("_")} for case in cases.values()
        ],
        "warmup_compile_s": warmup_s,
        "wall_time_s": time.perf_counter() - t0,
    }
    path = write_result("flows_depth_quick" if args.quick else "flows_depth", payload)
    print(f"wall {payload['wall_time_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
