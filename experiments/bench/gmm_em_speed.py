"""GMM EM speed and quality vs scikit-learn's ``GaussianMixture``, same data and initialisation.

What it measures: for each D in (2, 8, 32, 64) and covariance type in ("full", "diag"), T = 50
EM iterations of a K = 10 Gaussian mixture on N = 100000 synthetic examples, run by

* ours: :func:`genjax_models.latent.mixture.fit_em` (one jitted ``lax.scan``), in float32;
* scikit-learn: ``GaussianMixture(max_iter=T, tol=0, n_init=1).fit`` in float64 (its only
  precision for float64 input) on the same float32 values cast to float64,

both from the same initialisation: ours k-means++ (:func:`initial_params`, computed once),
handed to scikit-learn as ``weights_init`` / ``means_init`` / ``precisions_init`` (inverse
covariances), with ``reg_covar`` = our ``min_variance``. Convergence checks are off on both
sides (``tol=0``; ``n_iter_ == T`` is checked), so both do the same work: T M steps and
T + 1 E steps. scikit-learn's ``fit`` additionally validates the input and runs one M step
in ``_initialize`` on the (ignored) ``init_params="random_from_data"`` responsibilities before
the ``*_init`` arrays override it; that overhead (a ``max_iter=0`` fit, which also runs the
final E step; given no ``precisions_init``, which scikit-learn 1.9 cannot take with
``max_iter=0``) is timed separately and reported, not subtracted from the headline ratio.

Timing: ours = a first call timed on its own (compile + one run; ``compile_s`` = first call
minus best run), then the best of 3 calls with ``jax.block_until_ready``; scikit-learn = one
untimed ``max_iter=1`` warm-up fit, then the best of 3 ``fit`` calls; the repeats of the two
are interleaved in this one process. ``ratio = sklearn_s / ours_s`` (> 1: ours is faster).
Goal (from the issue): faster at equal log-likelihood.

Quality: the final mean log-likelihood per example of both fits on the same x -- ours from
``lls[-1]`` (float32) and scikit-learn's ``score(x)`` (float64) -- and both final parameter
sets re-evaluated by one float64 numpy evaluator (so the difference is the EM paths', not the
evaluators'). The per-iteration log-likelihood curves are compared too (scikit-learn's
``lower_bounds_[t]`` is the log-likelihood after t M steps, ours ``lls[t]`` after t + 1); from
the same initialisation they should agree closely (reported, not asserted).

Threads: nothing is pinned. scikit-learn / numpy use their BLAS thread pool and XLA its own
on the same cores (the pool sizes are recorded); another heavy process on the machine slows
both, which interleaving the repeats spreads over both sides. Caveat: under such load a tiny
scipy ``solve_triangular`` (K of them per scikit-learn full-covariance M step) can take ~8 ms
through OpenBLAS's threads (seen on a loaded 2-core machine; ~25x faster single-threaded), so
each case records ``scipy_trsm_probe_s`` (the larger of a probe before and after its
fits); a probe of more than ~0.1 ms means scikit-learn's
full-covariance times (small D above all) are inflated by that, not by its EM.

Run (from the repo root; results go to experiments/results/):
    python experiments/bench/gmm_em_speed.py           # writes gmm_em_speed.json
    python experiments/bench/gmm_em_speed.py --quick   # N = 5000, D in (2, 8), T = 5, 1 repeat;
                                                       # writes gmm_em_speed_quick.json
The full run took about 5 minutes on an idle 2-core CPU (dominated by the full-covariance fits
at D = 32 and 64, about 4 N K D^2 FLOPs per EM iteration on each side, 4 T-iteration fits per
side per case); the quick run takes about 15 s.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import sys
import time
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import parse_args, write_result  # noqa: E402
from scipy.linalg import solve_triangular  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402

from genjax_models.data import DataSpec  # noqa: E402
from genjax_models.latent.mixture import e_step, fit_em, initial_params  # noqa: E402
from genjax_models.model import get_model  # noqa: E402

NUM_COMPONENTS = 10
COVARIANCE_TYPES = ("full", "diag")
FULL = {"num_examples": 100_000, "dims": (2, 8, 32, 64), "iterations": 50, "repeats": 3}
QUICK = {"num_examples": 5_000, "dims": (2, 8), "iterations": 5, "repeats": 1}
SEED = 0


# ----------------------------------------------------------------------------- data
def make_data(rng: np.random.Generator, num: int, dim: int) -> dict[str, Any]:
    """Draw ``num`` examples of a random, fairly well separated K-component Gaussian mixture.

    Means ~ N(0, s^2 I) with s = 4 sqrt(2 / D), so the expected distance between two means is
    ~8 in every D; covariances 0.5 A A^T + diag(u) with A ~ N(0, 1/D) [D, D] and
    u ~ U(0.1, 0.5) (eigenvalues ~0.1..2.5); weights ~ Dirichlet(5). The data are rounded to
    float32 once; scikit-learn gets exactly those values in float64.
    """
    k = NUM_COMPONENTS
    means = rng.normal(scale=4.0 * math.sqrt(2.0 / dim), size=(k, dim))
    a = rng.normal(scale=1.0 / math.sqrt(dim), size=(k, dim, dim))
    covs = 0.5 * a @ np.swapaxes(a, -1, -2) + np.stack(
        [np.diag(rng.uniform(0.1, 0.5, size=dim)) for _ in range(k)]
    )
    weights = rng.dirichlet(np.full(k, 5.0))
    comps = rng.choice(k, size=num, p=weights)
    eps = rng.normal(size=(num, dim))
    x = means[comps] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[comps], eps)
    x32 = x.astype(np.float32)
    return {
        "x32": x32,
        "x64": x32.astype(np.float64),
        "true_ll64": mixture_log_likelihood(weights, means, covs, x32.astype(np.float64)),
    }


# ------------------------------------------------------------------- float64 evaluator
def mixture_log_likelihood(
    weights: np.ndarray, means: np.ndarray, covs: np.ndarray, x: np.ndarray
) -> float:
    """Return the mean log-likelihood per example of x under a full-covariance mixture, float64.

    ``covs [K, D, D]`` (diagonal matrices for a diagonal model).
    """
    num, dim = x.shape
    joint = np.empty((num, len(weights)))
    for k in range(len(weights)):
        chol = np.linalg.cholesky(covs[k])
        z = np.linalg.solve(chol, (x - means[k]).T)  # [D, N]; chol is small, N is large
        log_det = np.log(np.diag(chol)).sum()
        joint[:, k] = (
            np.log(weights[k]) - 0.5 * np.sum(z**2, 0) - log_det - 0.5 * dim * math.log(2 * math.pi)
        )
    return float(np.mean(logsumexp(joint, axis=1)))


def ours_as_numpy(model: Any, params: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return our params as float64 ``(weights [K], means [K, D], covariances [K, D, D])``."""
    weights = np.asarray(model.weights(params), np.float64)
    covs = np.asarray(model.covariances(params), np.float64)
    return weights / weights.sum(), np.asarray(params["means"], np.float64), covs


def sklearn_as_numpy(gm: SkGaussianMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return a fitted scikit-learn mixture as ``(weights, means, covariances [K, D, D])``."""
    covs = gm.covariances_
    if gm.covariance_type == "diag":
        covs = np.stack([np.diag(c) for c in covs])
    return gm.weights_, gm.means_, covs


def sklearn_init(
    weights: np.ndarray, means: np.ndarray, covs: np.ndarray, covariance: str
) -> dict[str, np.ndarray]:
    """Return scikit-learn's ``weights_init`` / ``means_init`` / ``precisions_init``."""
    if covariance == "diag":
        precisions = 1.0 / np.diagonal(covs, axis1=-2, axis2=-1)  # [K, D]
    else:
        precisions = np.linalg.inv(covs)
        precisions = 0.5 * (precisions + np.swapaxes(precisions, -1, -2))  # exactly symmetric
    return {"weights_init": weights, "means_init": means, "precisions_init": precisions}


def trsm_probe(dim: int, calls: int = 20) -> float:
    """Return the median seconds of one ``scipy.linalg.solve_triangular`` of a [D, D] system.

    scikit-learn's full-covariance M step calls this K times (``_compute_precision_cholesky``).
    With OpenBLAS's thread pool on cores that another process keeps busy, even a 2 x 2 solve
    can take milliseconds (waiting on worker threads), which inflates scikit-learn's time
    independently of D; recorded so such a run can be recognised (nothing is pinned).
    """
    chol = np.eye(dim) * 2.0 + np.tril(np.full((dim, dim), 0.1), -1)
    eye = np.eye(dim)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        solve_triangular(chol, eye, lower=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# --------------------------------------------------------------------------- one case
def run_case(data: dict[str, Any], dim: int, covariance: str, cfg: dict[str, Any]) -> dict:
    """Fit both from the same init, time them (interleaved), and compare log-likelihoods."""
    iters, repeats = cfg["iterations"], cfg["repeats"]
    model = get_model(
        "gmm", DataSpec((dim,), "continuous"), num_components=NUM_COMPONENTS, covariance=covariance
    )
    x32 = jnp.asarray(data["x32"])
    x64 = data["x64"]
    key = jax.random.key(SEED + dim)

    init = jax.block_until_ready(
        jax.jit(initial_params, static_argnums=0)(model, key, x32)
    )  # k-means++, float32
    w0, m0, c0 = ours_as_numpy(model, init)
    init_ll_ours32 = float(e_step(model, init, x32)[1])
    init_ll64 = mixture_log_likelihood(w0, m0, c0, x64)

    def make_sklearn(max_iter: int) -> SkGaussianMixture:
        init_arrays = sklearn_init(w0, m0, c0, covariance)
        if max_iter == 0:
            # scikit-learn 1.9 bug: a max_iter=0 fit with precisions_init raises AttributeError
            # (no covariances_); without it _initialize does the same work (one M step).
            del init_arrays["precisions_init"]
        return SkGaussianMixture(
            n_components=NUM_COMPONENTS,
            covariance_type=covariance,
            tol=0.0,
            reg_covar=model.min_variance,
            max_iter=max_iter,
            n_init=1,
            init_params="random_from_data",  # cheapest; overridden by the *_init arrays
            random_state=0,
            **init_arrays,
        )

    def run_ours() -> tuple[Any, jax.Array]:
        return jax.block_until_ready(fit_em(model, key, x32, iters, init_params=init))

    start = time.perf_counter()
    params, lls = run_ours()
    first_call_s = time.perf_counter() - start

    probe_before = trsm_probe(dim)
    ours_times, sk_times, overhead_times = [], [], []
    gm = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make_sklearn(1).fit(x64)  # untimed warm-up (imports, BLAS pools), like ours' compile
        for _ in range(repeats):
            start = time.perf_counter()
            params, lls = run_ours()
            ours_times.append(time.perf_counter() - start)

            gm = make_sklearn(iters)
            start = time.perf_counter()
            gm.fit(x64)
            sk_times.append(time.perf_counter() - start)

            gm0 = make_sklearn(0)
            start = time.perf_counter()
            gm0.fit(x64)
            overhead_times.append(time.perf_counter() - start)
    assert gm is not None
    if gm.n_iter_ != iters:
        raise RuntimeError(f"scikit-learn ran {gm.n_iter_} iterations, expected {iters}")

    lls = np.asarray(lls, np.float64)
    ours_ll32 = float(lls[-1])
    sk_score = float(gm.score(x64))
    ours_ll64 = mixture_log_likelihood(*ours_as_numpy(model, params), x64)
    sk_ll64 = mixture_log_likelihood(*sklearn_as_numpy(gm), x64)
    # sklearn lower_bounds_[t]: ll after t M steps (t = 0..T-1); ours lls[t]: after t + 1.
    sk_curve = np.asarray(getattr(gm, "lower_bounds_", []), np.float64)
    curve_diff = float(np.max(np.abs(sk_curve[1:] - lls[:-1]))) if len(sk_curve) == iters else None
    ours_s, sk_s = min(ours_times), min(sk_times)
    return {
        "dim": dim,
        "covariance": covariance,
        "num_examples": int(x64.shape[0]),
        "num_components": NUM_COMPONENTS,
        "iterations": iters,
        "sklearn_n_iter": int(gm.n_iter_),
        "ours_s": ours_s,
        "sklearn_s": sk_s,
        "ours_s_per_iter": ours_s / iters,
        "sklearn_s_per_iter": sk_s / iters,
        "ratio_sklearn_over_ours": sk_s / ours_s,
        "ours_first_call_s": first_call_s,
        "ours_compile_s": first_call_s - ours_s,
        "sklearn_overhead_s": min(overhead_times),
        "scipy_trsm_probe_s": max(probe_before, trsm_probe(dim)),  # before / after the fits
        "ours_times_s": ours_times,
        "sklearn_times_s": sk_times,
        "init_ll_ours_float32": init_ll_ours32,
        "init_ll_float64": init_ll64,
        "init_ll_sklearn": float(sk_curve[0]) if len(sk_curve) else None,
        "final_ll_ours_float32": ours_ll32,
        "final_ll_sklearn_score": sk_score,
        "final_ll_ours_float64_eval": ours_ll64,
        "final_ll_sklearn_float64_eval": sk_ll64,
        "final_ll_diff_ours_minus_sklearn": ours_ll64 - sk_ll64,
        "final_ll_diff_reported": ours_ll32 - sk_score,
        "max_abs_curve_diff": curve_diff,
        "ll_curve_ours": lls.tolist(),
        "ll_curve_sklearn": sk_curve.tolist(),
        "true_mixture_ll_float64": data["true_ll64"],
    }


# ----------------------------------------------------------------------------- main
def thread_info() -> list[dict[str, Any]]:
    """Describe the BLAS / OpenMP thread pools numpy and scikit-learn use (nothing pinned)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "num_threads", "version")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


HEADER = (
    f"{'D':>3} {'cov':>4} | {'ours s/it':>10} {'sk s/it':>10} {'ratio':>6} {'compile':>8} | "
    f"{'ll ours':>11} {'ll sk':>11} {'diff(f64)':>10} {'curve':>9} {'trsm ms':>8}"
)


def format_row(r: dict[str, Any]) -> str:
    curve = "n/a" if r["max_abs_curve_diff"] is None else f"{r['max_abs_curve_diff']:9.2e}"
    return (
        f"{r['dim']:>3} {r['covariance']:>4} | {r['ours_s_per_iter']:10.5f} "
        f"{r['sklearn_s_per_iter']:10.5f} {r['ratio_sklearn_over_ours']:6.2f} "
        f"{r['ours_compile_s']:8.2f} | {r['final_ll_ours_float32']:11.5f} "
        f"{r['final_ll_sklearn_score']:11.5f} {r['final_ll_diff_ours_minus_sklearn']:10.2e} "
        f"{curve:>9} {1e3 * r['scipy_trsm_probe_s']:8.3f}"
    )


def main() -> None:
    args = parse_args(__doc__)
    cfg = QUICK if args.quick else FULL
    print(
        f"GMM EM, K = {NUM_COMPONENTS}, N = {cfg['num_examples']}, T = {cfg['iterations']}, "
        f"best of {cfg['repeats']}; ours float32 (jax {jax.__version__}, "
        f"{jax.default_backend()}), scikit-learn float64 ({_version('scikit-learn')})"
    )
    print("ratio = sklearn / ours (> 1: ours faster); ll = mean log-lik per example (nats);")
    print("diff(f64) = ours - sklearn, both re-evaluated in float64; curve = max |ll_t| gap;")
    print("trsm ms = one scipy solve_triangular [D, D] (sklearn calls it K times per M step)")
    print(HEADER)
    print("-" * len(HEADER))
    rng = np.random.default_rng(SEED)
    results = []
    for dim in cfg["dims"]:
        data = make_data(rng, cfg["num_examples"], dim)
        for covariance in COVARIANCE_TYPES:
            row = run_case(data, dim, covariance, cfg)
            results.append(row)
            print(format_row(row), flush=True)

    payload = {
        "config": {**cfg, "num_components": NUM_COMPONENTS, "seed": SEED, "quick": args.quick},
        "notes": {
            "dtypes": "ours float32 (data rounded to float32 once); scikit-learn float64 on the "
            "same float32 values cast to float64; final_ll_*_float64_eval re-evaluate both "
            "final parameter sets with one float64 numpy evaluator",
            "initialisation": "ours k-means++ (initial_params) computed once and given to "
            "scikit-learn as weights_init / means_init / precisions_init; "
            "reg_covar = our min_variance",
            "work": "both: T M steps and T + 1 E steps (tol = 0, n_iter_ == T checked); "
            "scikit-learn's fit also validates the input and runs one M step in _initialize "
            "(timed, with the final E step, as sklearn_overhead_s = a max_iter=0 fit); "
            "included in sklearn_s",
            "timing": "ours: first call (compile + run) timed separately, then best of repeats "
            "with block_until_ready; scikit-learn: best of repeats of fit; interleaved in one "
            "process",
            "threads": "nothing pinned: numpy / scikit-learn use their BLAS thread pools "
            "(blas_threadpools) and XLA its own, on the same cores. scipy_trsm_probe_s is one "
            "[D, D] scipy solve_triangular (scikit-learn's full M step runs K of them): on "
            "cores loaded by another process, OpenBLAS threading can make it take ms even at "
            "D = 2, inflating scikit-learn's full-covariance times independently of D",
            "ll_curves": "ll_curve_sklearn[t] = lower_bounds_[t], ll after t M steps; "
            "ll_curve_ours[t] = ll after t + 1 M steps",
        },
        "blas_threadpools": thread_info(),
        "extra_versions": {name: _version(name) for name in ("scikit-learn", "scipy")},
        "results": results,
    }
    path = write_result("gmm_em_speed_quick" if args.quick else "gmm_em_speed", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
