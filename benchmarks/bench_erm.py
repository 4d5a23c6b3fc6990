"""Private ERM on the real Adult and KDDCup99 files, a diffprivlib timing, and RCV1-shaped data.

Not part of CI (needs the real files). Prints, in one run:

1. Adult: non-private logistic regression (target ≥ 84 %); AMP with analytic-Gaussian noise at
   ε = 0.1, δ = 1/n² (target: within 2 points of 79.3 %, Yu et al. 2020's AMP figure, or better);
   product noise (paper calibration and verified calibration) next to the baselines, with the
   claimed and the verified ε side by side.
2. KDDCup99: non-private accuracy (≈ 99 %).
3. Fit time of CMS11 objective perturbation (ours, Gamma-norm noise) over diffprivlib's
   ``LogisticRegression`` (the same algorithm), if diffprivlib is installed.
4. RCV1-shaped sparse data (50,000 × 47,236, 0.16 % dense, generated): fits stay sparse.

Usage::

    PYTHONPATH=. python benchmarks/bench_erm.py [--data-root DIR] [--repeats 5]

Data: ``<data root>/adult`` and ``<data root>/kddcup99``, the data root being ``--data-root`` or
``$PRODUCT_NOISE_DATA`` (see ``_data.py``); ``--adult DIR`` / ``--kdd DIR`` name either folder
directly.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
from _data import add_data_root_argument, dataset_dir  # noqa: E402  (this script's folder is on sys.path)
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from product_noise.data import load_adult, load_kddcup99
from product_noise.erm import PrivateLogisticRegression
from product_noise.privacy import PrivacyWarning


def _fmt_fig(f) -> str:
    return f"({f.epsilon:.4g}, {f.delta:.2g})"


def _runs(est_kw: dict, ds, repeats: int) -> tuple[float, float, object, float]:
    accs, t0 = [], time.perf_counter()
    est = None
    for s in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            est = PrivateLogisticRegression(**est_kw, random_state=s).fit(ds.X_train, ds.y_train)
        accs.append(est.score(ds.X_test, ds.y_test))
    return float(np.mean(accs)), float(np.std(accs)), est, (time.perf_counter() - t0) / repeats


def adult(root: str, repeats: int, cache: str | None) -> None:
    ds = load_adult(root, cache_dir=cache)
    n = ds.X_train.shape[0]
    print(f"\n== Adult: train {ds.X_train.shape}, test {ds.X_test.shape}")
    lr = LogisticRegression(max_iter=2000).fit(ds.X_train, ds.y_train)
    acc = lr.score(ds.X_test, ds.y_test)
    print(
        f"non-private LR (sklearn C=1): {100 * acc:.2f} %  [target >= 84] "
        f"{'PASS' if acc >= 0.84 else 'FAIL'}"
    )
    eps, delta = 0.1, 1.0 / n**2
    rows = [
        ("amp", "gaussian", {}),
        ("amp", "classic_gaussian", {}),
        ("amp", "gamma", {}),
        ("amp", "product_paper", {}),
        ("amp", "product", {}),
        ("output", "gaussian", {"lam": 1e-2}),
        ("output", "product_paper", {"lam": 1e-2}),
        ("objective", "gamma", {"lam": 1e-2}),
    ]
    print(f"eps={eps}, delta=1/n^2={delta:.3g}, {repeats} seeds; figures: (eps, delta)")
    print(
        f"{'method':10s} {'noise':17s} {'acc %':>13s} {'claimed':>20s} {'verified':>20s} "
        f"{'|noise|':>9s} {'s/fit':>6s}"
    )
    for method, noise, kw in rows:
        m, s, est, t = _runs(
            {
                "epsilon": eps,
                "delta": delta,
                "method": method,
                "noise": noise,
                "data_norm": 1.0,
                **kw,
            },
            ds,
            repeats,
        )
        p = est.privacy_
        print(
            f"{method:10s} {noise:17s} {100 * m:6.2f} ± {100 * s:4.2f} "
            f"{_fmt_fig(p.claimed):>20s} {_fmt_fig(p.verified):>20s} {p.noise_norm:9.3g} "
            f"{t:6.2f}"
        )
        if method == "amp" and noise == "gaussian":
            ok = m >= 0.793 - 0.02
            print(f"   -> AMP analytic Gaussian vs 79.3 % (Yu et al.): {'PASS' if ok else 'FAIL'}")


def kdd(root: str, cache: str | None) -> None:
    t = time.perf_counter()
    ds = load_kddcup99(root, cache_dir=cache)
    print(f"\n== KDDCup99: train {ds.X_train.shape} (load {time.perf_counter() - t:.1f} s)")
    lr = LogisticRegression(max_iter=2000).fit(ds.X_train, ds.y_train)
    print(f"non-private LR: {100 * lr.score(ds.X_test, ds.y_test):.2f} %  [expected ~99]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        est = PrivateLogisticRegression(
            epsilon=0.1,
            delta=1 / ds.X_train.shape[0] ** 2,
            method="amp",
            data_norm=1.0,
            random_state=0,
        ).fit(ds.X_train, ds.y_train)
    print(
        f"AMP analytic Gaussian eps=0.1: {100 * est.score(ds.X_test, ds.y_test):.2f} % "
        f"[Yu et al. AMP 97.5]"
    )


def diffprivlib_ratio(root: str, cache: str | None, repeats: int) -> None:
    print("\n== fit time vs diffprivlib (CMS11 objective perturbation, eps=1, Adult)")
    try:
        import diffprivlib
        from diffprivlib.models import LogisticRegression as DPLR
    except ImportError as exc:
        if "DOUBLE" not in str(exc):
            print(f"diffprivlib not importable ({exc}; pip install diffprivlib): skipped")
            return
        # diffprivlib 0.6.6 imports sklearn.tree._tree.DOUBLE/DTYPE, gone in scikit-learn 1.9;
        # only its random-forest module uses them, so a shim is enough for LogisticRegression
        import sklearn.tree._tree as _tree

        _tree.DOUBLE, _tree.DTYPE = np.float64, np.float32
        print("note: diffprivlib imported with a DOUBLE/DTYPE shim (incompatible with sklearn 1.9)")
        import diffprivlib
        from diffprivlib.models import LogisticRegression as DPLR
    ds = load_adult(root, cache_dir=cache)
    n = ds.X_train.shape[0]
    lam = 1e-3
    try:
        DPLR(epsilon=1.0, data_norm=1.0)
    except TypeError as exc:  # diffprivlib 0.6.6 passes multi_class=, removed in sklearn 1.8
        print(
            f"diffprivlib {diffprivlib.__version__} is incompatible with this scikit-learn "
            f"({exc}): skipped"
        )
        return
    ours, theirs, acc_o, acc_t = [], [], [], []
    for s in range(repeats):
        t = time.perf_counter()
        est = PrivateLogisticRegression(
            epsilon=1.0,
            method="objective",
            noise="gamma",
            lam=lam,
            data_norm=1.0,
            random_state=s,
            tol=1e-6,
        ).fit(ds.X_train, ds.y_train)
        ours.append(time.perf_counter() - t)
        acc_o.append(est.score(ds.X_test, ds.y_test))
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dp = DPLR(epsilon=1.0, data_norm=1.0, C=1 / (n * lam), random_state=s, max_iter=1000)
            dp.fit(ds.X_train, ds.y_train)
        theirs.append(time.perf_counter() - t)
        acc_t.append(dp.score(ds.X_test, ds.y_test))
    mo, mt = float(np.median(ours)), float(np.median(theirs))
    print(
        f"diffprivlib {diffprivlib.__version__}: {mt:.3f} s/fit, acc {100 * np.mean(acc_t):.2f} %"
    )
    print(
        f"ours (tol 1e-6): {mo:.3f} s/fit, acc {100 * np.mean(acc_o):.2f} %;  "
        f"ratio ours/diffprivlib = {mo / mt:.2f}"
    )


def rcv1_shaped() -> None:
    n, d, density = 50000, 47236, 0.0016
    print(f"\n== RCV1-shaped sparse data: {n} x {d}, density {density}")
    rng = np.random.default_rng(0)
    X = sparse.random(n, d, density=density, format="csr", random_state=rng)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = (sparse.diags(1 / np.maximum(norms, 1e-12)) @ X).tocsr()
    w = rng.standard_normal(d)
    y = np.where(X @ w > 0, 1, -1)
    k = int(0.8 * n)
    dense_gb = n * d * 8 / 1e9
    Xa = sparse.hstack([X, sparse.csr_matrix(np.ones((n, 1)))], format="csr")
    lr = LogisticRegression(C=1 / (k * 1e-4), max_iter=500).fit(Xa[:k], y[:k])
    print(f"non-private (sklearn, same lambda): {100 * lr.score(Xa[k:], y[k:]):.2f} %")
    for method in ("output", "amp"):
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        t = time.perf_counter()
        est = PrivateLogisticRegression(
            epsilon=1.0, delta=1 / k**2, method=method, lam=1e-4, data_norm=1.0, random_state=0
        ).fit(X[:k], y[:k])
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(
            f"{method:7s}: fit {dt:6.1f} s, acc {100 * est.score(X[k:], y[k:]):.2f} %, "
            f"peak RSS {rss:.2f} GB (was {rss0:.2f}; dense X would be {dense_gb:.1f} GB), "
            f"verified {_fmt_fig(est.privacy_.verified)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--adult", default=None, help="Adult folder (default <data root>/adult)")
    ap.add_argument("--kdd", default=None, help="KDDCup99 folder (default <data root>/kddcup99)")
    add_data_root_argument(ap)
    ap.add_argument("--cache", default=None, help="cache directory for the preprocessed sets")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip", nargs="*", default=[], help="adult kdd diffprivlib rcv1")
    a = ap.parse_args()
    try:
        if a.adult is None and not {"adult", "diffprivlib"} <= set(a.skip):
            a.adult = dataset_dir(a.data_root, "adult")
        if a.kdd is None and "kdd" not in a.skip:
            a.kdd = dataset_dir(a.data_root, "kddcup99")
    except FileNotFoundError as err:
        ap.error(str(err))
    if "adult" not in a.skip:
        adult(a.adult, a.repeats, a.cache)
    if "kdd" not in a.skip:
        kdd(a.kdd, a.cache)
    if "diffprivlib" not in a.skip:
        diffprivlib_ratio(a.adult, a.cache, a.repeats)
    if "rcv1" not in a.skip:
        rcv1_shaped()


if __name__ == "__main__":
    main()
