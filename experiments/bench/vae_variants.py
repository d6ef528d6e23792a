"""VAE variants on mnist5k: test NLL against active units for the KL controls, and the CVAE.

What it measures: the mnist5k VAE of experiments/configs/vae_mnist5k.py (latent 32, hidden
(512, 256), Bernoulli decoder, dynamic binarisation, Adam 1e-3, batch 128, 3000 steps) trained
once per KL setting, then evaluated on the test split with ``evaluate``: the IWAE-1000
estimate of the NLL (with its standard error) and the ELBO (k = 1); recorded beside them are
the KL term of the last logged training step and the diagnostics the evaluator reports for
VAEs: active units (Burda et al. 2016: Var_x E_q[z_u | x] > 0.01) out of 32 and their mean
activity.

Settings (one run each, seed 0): the plain ELBO (beta = 1); beta = 0.5 and beta = 2
(beta-VAE); a linear warm-up of the KL weight over the first 1000 steps; free bits
lambda = 0.25 and 1.0 nats per dimension. The question each answers: does the setting buy
more active units, and at what cost in the true test NLL (always the IWAE-1000 bound of the
model, whatever the training loss was)? One more row trains the conditional VAE (``cvae``, same
sizes, the digit label into encoder and decoder): its figure bounds log p(x | y), a
conditional likelihood, not comparable with log p(x) (within one joint model the two differ
by log p(y | x) - log p(y) <= log 10 = 2.3 nats).

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/vae_variants.py           # writes vae_variants.json (~15 min)
    python experiments/bench/vae_variants.py --quick   # smoke run (50 steps, k = 10)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from common import parse_args, write_result  # noqa: E402

from genjax_models.data import load_dataset, prepare  # noqa: E402
from genjax_models.eval.likelihood import evaluate  # noqa: E402
from genjax_models.model import get_model  # noqa: E402
from genjax_models.train import TrainConfig, fit  # noqa: E402

MODEL = {"latent_dim": 32, "hidden": (512, 256)}
TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0}
SETTINGS = {  # name -> (model, its KL / other fields)
    "elbo": ("vae", {}),
    "beta_0.5": ("vae", {"beta": 0.5}),
    "beta_2": ("vae", {"beta": 2.0}),
    "warmup_1000": ("vae", {"kl_warmup_steps": 1000}),
    "free_bits_0.25": ("vae", {"free_bits": 0.25}),
    "free_bits_1.0": ("vae", {"free_bits": 1.0}),
    "cvae": ("cvae", {}),
}


def run_one(
    name: str, model_name: str, kl: dict[str, Any], steps: int, eval_k: int
) -> dict[str, Any]:
    prepared = prepare(load_dataset("mnist5k"), binarize="dynamic", eval_seed=0)
    model = get_model(model_name, prepared.spec, **MODEL, **kl)
    config = TrainConfig(
        steps=steps, log_every=max(1, min(500, steps)), checkpoint_every=10**9,
        steps_per_call=50, **TRAIN,
    )
    t0 = time.perf_counter()
    result = fit(model, prepared, config, progress=False)
    jax.block_until_ready(result.state.params)
    train_s = time.perf_counter() - t0
    params = result.state.eval_params
    last = result.history[-1]
    nll = evaluate(model, params, prepared, key=jax.random.key(123), num_samples=eval_k)
    elbo = evaluate(model, params, prepared, key=jax.random.key(456), num_samples=1)
    record = {
        "setting": name,
        "model": model_name,
        "fields": kl,
        "model_config": {k: list(v) if isinstance(v, tuple) else v for k, v in MODEL.items()},
        "train_config": {"steps": steps, **TRAIN, "optimizer": "adam"},
        "train_wall_s": train_s,
        "final_train_metrics": {k: v for k, v in last.items() if isinstance(v, float)},
        "test_nll": {
            k: nll[k] for k in ("estimator", "nll_nats", "nll_stderr", "log_prob_kind",
                                "estimator_details")
        },
        "test_neg_elbo_nats": elbo["nll_nats"],
        "diagnostics": nll["diagnostics"],
    }
    print(
        f"{name:15s} train {train_s:5.0f}s  test {nll['estimator']} NLL "
        f"{nll['nll_nats']:.2f}+-{nll['nll_stderr']:.2f}  -ELBO {elbo['nll_nats']:.2f}  "
        f"train KL {last['kl']:.2f}  active units {nll['diagnostics']['active_units']:.0f}/32",
        flush=True,
    )
    return record


def main() -> None:
    args = parse_args(__doc__)
    steps, eval_k = (50, 10) if args.quick else (3000, 1000)
    t0 = time.perf_counter()
    runs = [run_one(name, *setting, steps, eval_k) for name, setting in SETTINGS.items()]
    payload = {
        "description": (
            "mnist5k VAE: test NLL (IWAE-k), -ELBO and active units per KL setting; CVAE's "
            "bound on log p(x|y)"
        ),
        "quick": args.quick,
        "summary": {
            r["setting"]: {
                "test_nll_nats": r["test_nll"]["nll_nats"],
                "test_nll_stderr": r["test_nll"]["nll_stderr"],
                "test_neg_elbo_nats": r["test_neg_elbo_nats"],
                "train_kl_nats": r["final_train_metrics"]["kl"],
                "active_units": r["diagnostics"]["active_units"],
                "bounds": r["test_nll"]["estimator_details"].get("conditional", "log p(x)"),
            }
            for r in runs
        },
        "runs": runs,
        "total_wall_s": time.perf_counter() - t0,
    }
    path = write_result("vae_variants_quick" if args.quick else "vae_variants", payload)
    print(f"total {payload['total_wall_s']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
