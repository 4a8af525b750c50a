"""EM speed: genlab's GaussianMixture against scikit-learn's, same data, same start, same steps.

Both start from the same weights, means and precisions and run the same number of EM
iterations with tol=0, so the work is identical; the script prints ms per iteration, the
speed ratio, the difference in final average log-likelihood and in means, and the peak
memory each allocates (tracemalloc, which sees NumPy's buffers).

    python benchmarks/gmm_vs_sklearn.py            # the two cases of the issue
    python benchmarks/gmm_vs_sklearn.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np


def make_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(k, d))
    labels = rng.integers(0, k, n)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    return centers[labels] + rng.standard_normal((n, d)) * scales[labels]


def start(x: np.ndarray, k: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A shared start: k random points as means, the data covariance, equal weights."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    prec = np.linalg.inv(np.cov(x[:100_000].T).reshape(d, d))
    return {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": x[rng.choice(len(x), k, replace=False)],
        "precisions_init": np.broadcast_to(prec, (k, d, d)).copy(),
    }


def run(make, x: np.ndarray, iters: int) -> tuple[float, float, object]:
    """ms per iteration (timed alone), then peak MiB allocated (a second, traced fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = make().fit(x)
        seconds = time.perf_counter() - t0
        tracemalloc.start()
        make().fit(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return 1000 * seconds / iters, peak / 2**20, model


def case(n: int, d: int, k: int, iters: int, dtype: str = "float64") -> dict[str, float]:
    from sklearn.mixture import GaussianMixture as SkMixture

    from genlab.models.mixture import GaussianMixture

    x = make_data(n, d, k)
    init = start(x, k)
    common = dict(covariance_type="full", max_iter=iters, tol=0.0, **init)
    ms_sk, mem_sk, sk = run(lambda: SkMixture(k, **common), x, iters)
    ms_gl, mem_gl, gl = run(lambda: GaussianMixture(k, dtype=dtype, **common), x, iters)
    return {
        "N": n,
        "d": d,
        "K": k,
        "dtype": dtype,
        "iters": iters,
        "sklearn_ms": ms_sk,
        "genlab_ms": ms_gl,
        "speedup": ms_sk / ms_gl,
        "dloglik": abs(sk.lower_bound_ - gl.lower_bound_),
        "dmeans": float(np.abs(sk.means_ - gl.means_).max()),
        "sklearn_peak_mb": mem_sk,
        "genlab_peak_mb": mem_gl,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    cases = [(1_000_000, 2, 10), (200_000, 8, 16)]
    if args.quick:
        cases = [(20_000, 2, 10), (5_000, 8, 16)]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numpy {np.__version__}"
    )
    header = (
        "N",
        "d",
        "K",
        "dtype",
        "sklearn ms/it",
        "genlab ms/it",
        "speedup",
        "|d loglik|",
        "|d means|",
        "sklearn MiB",
        "genlab MiB",
    )
    print(" | ".join(header))
    for n, d, k in cases:
        for dtype in ("float64", "float32"):
            r = case(n, d, k, args.iters, dtype)
            print(
                f"{n} | {d} | {k} | {dtype} | {r['sklearn_ms']:.1f} | {r['genlab_ms']:.1f} | "
                f"{r['speedup']:.1f}x | {r['dloglik']:.1e} | {r['dmeans']:.1e} | "
                f"{r['sklearn_peak_mb']:.0f} | {r['genlab_peak_mb']:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
