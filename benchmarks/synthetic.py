"""ADBench's four synthetic anomaly types (Han et al., NeurIPS 2022, section 3.3), generated on
the normal rows of a real data set.

As in ADBench's ``generate_realistic_synthetic``, the normal rows of the real set are used only to
fit a generative model; the generated set has as many normal rows and as many anomalies as the real
set, and its normal rows are *also* generated, so that a detector cannot tell anomalies from normals
by artefacts of the generator:

1. The normal rows are standardized (mean / std; a constant column keeps scale 1) and a Gaussian
   mixture with full covariances is fitted, ``n_components`` in 1..9 chosen by BIC (ADBench's
   choice). Synthetic normals: ``n_normal`` samples of that mixture.
2. Anomalies (``n_anomalies`` rows), by type:

   * ``local``: the same mixture with every covariance scaled by ``alpha = 5`` (ADBench's value).
   * ``clustered``: the same mixture with every mean scaled by ``alpha = 5`` (ADBench's value).
   * ``global``: each feature uniform on the synthetic normals' range widened by 10 % (1.1 times
     the range, centred on it; ADBench draws ``U(1.1 min, 1.1 max)`` of min-max-scaled data).
   * ``dependency``: each feature drawn independently (with replacement) from the synthetic
     normals' values of that feature: the marginals are kept, the dependencies between features
     broken. Simpler than ADBench, which fits a vine copula for the normals and draws the
     anomalies from per-feature kernel densities; here the mixture stands in for the copula and
     the empirical marginals for the densities.
3. Everything is mapped back to the original feature scale; the rows are shuffled.

Everything is seeded by ``seed`` (the protocol seed: each of the five seeds uses its own draw).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

TYPES = ("local", "global", "dependency", "clustered")
ALPHA = 5.0
GLOBAL_WIDEN = 1.1
MAX_COMPONENTS = 9


def fit_mixture(Z: np.ndarray, seed: int) -> GaussianMixture:
    best, best_bic = None, np.inf
    for k in range(1, MAX_COMPONENTS + 1):
        if k > len(Z):
            break
        gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed).fit(Z)
        bic = gm.bic(Z)
        if bic < best_bic:
            best, best_bic = gm, bic
    return best


def _sample(gm: GaussianMixture, n: int, rng: np.random.Generator, *, means=None, covs=None):
    """``n`` draws of a full-covariance mixture (with optionally replaced means / covariances)."""
    means = gm.means_ if means is None else means
    covs = gm.covariances_ if covs is None else covs
    comp = rng.choice(len(gm.weights_), size=n, p=gm.weights_ / gm.weights_.sum())
    out = np.empty((n, means.shape[1]))
    for k in np.unique(comp):
        idx = np.flatnonzero(comp == k)
        out[idx] = rng.multivariate_normal(means[k], covs[k], size=len(idx), method="cholesky")
    return out


def make_synthetic(
    X_normal: pd.DataFrame, n_anomalies: int, kind: str, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    if kind not in TYPES:
        raise ValueError(f"unknown synthetic type {kind!r}; one of {TYPES}")
    rng = np.random.default_rng(seed)
    scaler = StandardScaler().fit(X_normal.to_numpy(dtype=float))
    Z = scaler.transform(X_normal.to_numpy(dtype=float))
    gm = fit_mixture(Z, seed)
    normals = _sample(gm, len(Z), rng)
    if kind == "local":
        anomalies = _sample(gm, n_anomalies, rng, covs=ALPHA * gm.covariances_)
    elif kind == "clustered":
        anomalies = _sample(gm, n_anomalies, rng, means=ALPHA * gm.means_)
    elif kind == "global":
        lo, hi = normals.min(axis=0), normals.max(axis=0)
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * GLOBAL_WIDEN
        anomalies = rng.uniform(mid - half, mid + half, size=(n_anomalies, Z.shape[1]))
    else:  # dependency
        cols = [
            rng.choice(normals[:, j], size=n_anomalies, replace=True) for j in range(Z.shape[1])
        ]
        anomalies = np.column_stack(cols)
    X = np.vstack([normals, anomalies])
    y = np.r_[np.zeros(len(normals), dtype=int), np.ones(n_anomalies, dtype=int)]
    order = rng.permutation(len(y))
    X = scaler.inverse_transform(X[order])
    return pd.DataFrame(X, columns=list(X_normal.columns)), y[order]
