"""EM speed: genlab's GaussianMixture against scikit-learn's, same data, same start, same steps.

Both start from the same weights, means and precisions and run the same number of EM
iterations with tol=0, so the work is identical; the script prints ms per iteration (the
median of --repeats fits per side, the sides alternating so both see the same machine load),
the speed ratio, the difference in final average log-likelihood and in means, the threads
each side uses, and the peak memory each allocates (one more, traced fit each; tracemalloc
sees NumPy's buffers).

Threads: scikit-learn's EM is NumPy code, so its parallel work is BLAS's (OpenBLAS's thread
count, as threadpoolctl reports it); genlab runs its chunks on its own thread pool
(GENLAB_NUM_THREADS, at most the core count) with BLAS held to one thread inside each.

    python benchmarks/gmm_vs_sklearn.py            # the two cases of the issue
    python benchmarks/gmm_vs_sklearn.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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


def fit_seconds(make, x: np.ndarray) -> tuple[float, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = make().fit(x)
        return time.perf_counter() - t0, model


def peak_mib(make, x: np.ndarray) -> float:
    """Peak MiB allocated during one fit (tracemalloc)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        make().fit(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def threads() -> tuple[int, str]:
    """(scikit-learn's BLAS threads, genlab's threads as a sentence)."""
    from threadpoolctl import threadpool_info

    from genlab.models.mixture import _n_threads

    blas = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    return blas, f"{_n_threads()} EM threads, BLAS 1 each"


def case(n: int, d: int, k: int, iters: int, dtype: str, repeats: int) -> dict[str, float]:
    from sklearn.mixture import GaussianMixture as SkMixture

    from genlab.models.mixture import GaussianMixture

    x = make_data(n, d, k)
    init = start(x, k)
    common = dict(covariance_type="full", max_iter=iters, tol=0.0, **init)
    sides = {"sklearn": lambda: SkMixture(k, **common),
             "genlab": lambda: GaussianMixture(k, dtype=dtype, **common)}  # fmt: skip
    seconds: dict[str, list[float]] = {s: [] for s in sides}
    fitted = {}
    for _ in range(repeats):  # alternate, so both see the same load
        for side, make in sides.items():
            t, fitted[side] = fit_seconds(make, x)
            seconds[side].append(t)
    ms = {s: 1000 * statistics.median(v) / iters for s, v in seconds.items()}
    sk, gl = fitted["sklearn"], fitted["genlab"]
    return {
        "N": n,
        "d": d,
        "K": k,
        "dtype": dtype,
        "iters": iters,
        "sklearn_ms": ms["sklearn"],
        "genlab_ms": ms["genlab"],
        "sklearn_all": [1000 * t / iters for t in seconds["sklearn"]],
        "genlab_all": [1000 * t / iters for t in seconds["genlab"]],
        "speedup": ms["sklearn"] / ms["genlab"],
        "dloglik": abs(sk.lower_bound_ - gl.lower_bound_),
        "dmeans": float(np.abs(sk.means_ - gl.means_).max()),
        "sklearn_peak_mb": peak_mib(sides["sklearn"], x),
        "genlab_peak_mb": peak_mib(sides["genlab"], x),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per side (median)")
    parser.add_argument("--cases", default="", help="NxDxK,... instead of the issue's two")
    parser.add_argument("--dtypes", default="float64,float32")
    args = parser.parse_args()
    cases = [(1_000_000, 2, 10), (200_000, 8, 16)]
    if args.quick:
        cases = [(20_000, 2, 10), (5_000, 8, 16)]
    if args.cases:
        cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    import sklearn

    blas, ours = threads()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}, numpy {np.__version__}, scikit-learn {sklearn.__version__}; "
        f"{args.iters} iterations a fit, median of {args.repeats} fits a side"
    )
    print(f"# threads: scikit-learn {blas} (OpenBLAS); genlab {ours}")
    header = (
        "N",
        "d",
        "K",
        "dtype",
        "sklearn ms/it",
        "genlab ms/it",
        "speedup",
        "sklearn / genlab ms/it, each fit",
        "|d loglik|",
        "|d means|",
        "sklearn MiB",
        "genlab MiB",
    )
    print(" | ".join(header))
    for n, d, k in cases:
        for dtype in args.dtypes.split(","):
            r = case(n, d, k, args.iters, dtype, args.repeats)
            each = " / ".join(
                ", ".join(f"{v:.0f}" for v in r[side]) for side in ("sklearn_all", "genlab_all")
            )
            print(
                f"{n} | {d} | {k} | {dtype} | {r['sklearn_ms']:.1f} | {r['genlab_ms']:.1f} | "
                f"{r['speedup']:.1f}x | {each} | {r['dloglik']:.1e} | {r['dmeans']:.1e} | "
                f"{r['sklearn_peak_mb']:.0f} | {r['genlab_peak_mb']:.0f}",
                flush=True,
            )
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
