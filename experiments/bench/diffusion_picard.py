"""Parallel-in-time (Picard / ParaDiGMS) sampling: sequential rounds against error.

What it measures: the probability-flow ODE of the 2-D, 3-component Gaussian-mixture oracle on
the VP process (t 1 -> 1e-3), driven by the exact denoiser (``oracle.denoiser``), float64, 200
prior draws shared by every run. For K = 100 and 1000 Euler steps (DDIM: Euler in the scaled
variables), the Picard solve of the same steps (``samplers.picard``) with
windows of 16 and 64 steps, at tolerances 1e-2 .. 1e-5 (RMS change per entry). (Windows times
batch stay below 16 384 here: on this jaxlib's CPU backend a round whose batched denoiser call
holds more than ~16k of the oracle's LAPACK factorisations deadlocks inside the while loop; an
elementwise denoiser, e.g. the Gaussian one of the tests, runs 40k-example rounds fine.)

- ``rounds``: sequential rounds of batched denoiser calls (the latency a machine that evaluates
  a window in parallel sees; the sequential sampler needs K + 1), ``nfe`` per example (the work);
- ``error_vs_sequential``: median over examples of |x_picard - x_sequential| (the error the
  iteration adds to the K-step solve);
- ``error_vs_reference``: median |x - x_ref| against an RK4 solve at 4001 NFE, next to the
  sequential Euler sampler's error with as many steps as Picard's rounds (equal latency).

Goal (from the issue): >= 3x fewer sequential rounds at equal error (ParaDiGMS reports 2-4x wall
clock on GPUs). On this CPU the window's evaluations run one after another, so wall time is not
the measure here: rounds are.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/diffusion_picard.py           # diffusion_picard.json (~1 min)
    python experiments/bench/diffusion_picard.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from common import parse_args, write_result  # noqa: E402

from genjax_models.diffusion import oracle  # noqa: E402
from genjax_models.diffusion import samplers as smp  # noqa: E402
from genjax_models.diffusion.processes import VP  # noqa: E402

TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5)


def median_error(x: jax.Array, y: jax.Array) -> float:
    return float(jnp.median(jnp.linalg.norm(x - y, axis=-1)))


def main() -> None:
    args = parse_args(__doc__)
    jax.config.update("jax_enable_x64", True)
    step_counts, num = ((20,), 50) if args.quick else ((100, 1000), 200)
    process = VP()
    mixture = oracle.example_mixture(2, 3, dtype=jnp.float64)

    def denoise(x, t):
        return oracle.denoiser(mixture, process, x, t)

    x_init = process.prior_sample(jax.random.key(0), (num, 2), jnp.float64)

    def ode(nfe: int, name: str = "euler") -> jax.Array:
        return jax.jit(lambda x: smp.sample(name, denoise, process, None, None, nfe,
                                            x_init=x))(x_init)

    reference = ode(4001, "rk4")
    rows = []
    for steps in step_counts:
        sequential = ode(steps + 1)
        seq_error = median_error(sequential, reference)
        print(f"K = {steps}: sequential Euler error vs reference {seq_error:.2e}", flush=True)
        for window in (16, 64):
            for tol in TOLERANCES:
                run = jax.jit(lambda x, w=window, tol=tol, n=steps + 1: smp.picard(
                    "euler", denoise, process, None, None, n, x_init=x, window=w, tol=tol))
                start = time.perf_counter()
                result = jax.block_until_ready(run(x_init))
                wall = time.perf_counter() - start  # includes compilation
                rounds = int(result.rounds)
                same_latency = ode(max(rounds, 2))  # Euler with (rounds - 1) steps + denoise
                row = {
                    "steps": steps,
                    "window": steps if window is None else min(window, steps),
                    "tol": tol,
                    "rounds": rounds,
                    "sequential_rounds": steps + 1,
                    "round_reduction": (steps + 1) / rounds,
                    "nfe": int(result.nfe),
                    "error_vs_sequential": median_error(result.samples, sequential),
                    "error_vs_reference": median_error(result.samples, reference),
                    "sequential_error_vs_reference": seq_error,
                    "euler_at_equal_rounds_error_vs_reference": median_error(same_latency,
                                                                             reference),
                    "wall_s_incl_compile": wall,
                }
                rows.append(row)
                print(f"  window {row['window']:4d} tol {tol:.0e}: {rounds:4d} rounds "
                      f"({row['round_reduction']:.1f}x fewer), nfe {row['nfe']:6d}, error vs "
                      f"sequential {row['error_vs_sequential']:.1e}, vs reference "
                      f"{row['error_vs_reference']:.2e} (Euler at equal rounds "
                      f"{row['euler_at_equal_rounds_error_vs_reference']:.2e})", flush=True)
    payload = {
        "description": "Picard (ParaDiGMS) solve of Euler PF-ODE steps on the mixture oracle",
        "quick": args.quick,
        "process": "vp",
        "num_samples": num,
        "reference": "rk4, 4001 NFE",
        "rows": rows,
    }
    print("wrote", write_result("diffusion_picard_quick" if args.quick else "diffusion_picard",
                                payload))


if __name__ == "__main__":
    main()
