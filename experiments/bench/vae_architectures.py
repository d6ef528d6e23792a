"""VAE on mnist5k with MLP against convolutional encoder / decoder, at an equal step budget.

What it measures: ``vae`` (latent 32, Bernoulli decoder, dynamic binarisation, Adam 1e-3,
batch 64, 2000 steps, seed 0) with ``architecture="mlp"`` (hidden (512, 256), the default) and
``architecture="conv"`` (32 channels, 2 stride-2 stages to a 7x7 grid, 1 residual block each
side, one dense layer to / from the latent; the VQ-VAE's stacks), each evaluated on the 1000
test images (one fixed binarisation): the IWAE-1000 bound on -log p(x) with its standard
error, the negative ELBO (k = 1), active units, the parameter count, training steps per second
and, for scale, the same process's 1024^2 float32 matmul rate.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/vae_architectures.py           # vae_architectures.json (~11 min:
                                                            # mostly the conv model's IWAE-1000,
                                                            # 1e6 conv decoder passes)
    python experiments/bench/vae_architectures.py --quick   # smoke run
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from common import fit_timed, measure_matmul_flops, parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

RUNS = {"mlp": {"architecture": "mlp"}, "conv": {"architecture": "conv"}}


def main() -> None:
    args = parse_args(__doc__)
    steps, k = (20, 10) if args.quick else (2000, 1000)
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    runs = {}
    for name, extra in RUNS.items():
        model = get_model("vae", prepared.spec, latent_dim=32, **extra)
        result, params, train_s = fit_timed(model, prepared, steps, batch_size=64)
        iwae = evaluate(model, params, prepared, key=jax.random.key(123), num_samples=k)
        elbo = evaluate(model, params, prepared, key=jax.random.key(124), num_samples=1)
        runs[name] = {
            "model_config": {"latent_dim": 32, **extra},
            "num_params": int(sum(p.size for p in jax.tree.leaves(params))),
            "test_nll_nats": iwae["nll_nats"],
            "test_nll_stderr": iwae["nll_stderr"],
            "test_neg_elbo_nats": elbo["nll_nats"],
            "estimator": iwae["estimator"],
            "diagnostics": iwae["diagnostics"],
            "train_wall_s": train_s,
            "steps_per_sec_incl_compile": steps / train_s,
            "final_steps_per_sec": result.history[-1].get("steps_per_sec"),
        }
        r = runs[name]
        print(f"{name:5s} NLL {r['test_nll_nats']:.2f} +- {r['test_nll_stderr']:.2f}  -ELBO "
              f"{r['test_neg_elbo_nats']:.2f}  active {r['diagnostics']['active_units']:.0f}/32"
              f"  params {r['num_params']}  train {train_s:.0f}s", flush=True)
    payload = {
        "description": "vae on mnist5k: mlp vs conv encoder/decoder at 2000 steps, batch 64",
        "quick": args.quick,
        "train_config": {"steps": steps, "batch_size": 64, "lr": 1e-3, "seed": 0},
        "eval_num_samples": k,
        "matmul_gflops_1024_f32": measure_matmul_flops()["flops_per_s_best"] / 1e9,
        "runs": runs,
    }
    print("wrote", write_result("vae_architectures_quick" if args.quick
                                else "vae_architectures", payload))


if __name__ == "__main__":
    main()
