"""Disentanglement of a code against known factors: MIG and DCI.

Both take the posterior means `mu` [N, D] of N sentences and their factor values (one label per
sentence and factor), as the built-in corpus provides (data.builtin.FACTORS).

MIG (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs"), with the discretisation
of Locatello et al. 2019 (disentanglement_lib: each dimension in `bins` equal-width bins):

    MIG = 1/K sum_k (I(z_j(1); v_k) - I(z_j(2); v_k)) / H(v_k)

where j(1), j(2) are the dimensions with the largest and second-largest mutual information with
factor v_k. 1: each factor lives in one dimension alone; 0: in none or spread over several.

DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
Representations"): from an importance matrix R [D, K] (here the impurity importances of a random
forest per factor that considers every dimension at each split, scikit-learn; disentanglement_lib
uses gradient boosting, slower at the same importances on codes like these), with
P_jk = R_jk / sum_k R_jk and P~_jk = R_jk / sum_j R_jk:

    disentanglement = sum_j rho_j (1 - H_K(P_j.)),   rho_j = sum_k R_jk / sum_jk R_jk
    completeness    = 1/K sum_k (1 - H_D(P~_.k))
    informativeness = mean over factors of the held-out accuracy of the predictor

with entropies in base K (per dimension) and base D (per factor).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import mutual_info_score
from sklearn.model_selection import train_test_split


def discretize(mu: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each column of mu [N, D] in `bins` equal-width bins over its range (ints [N, D])."""
    mu = np.asarray(mu, dtype=float)
    out = np.zeros(mu.shape, dtype=int)
    for d in range(mu.shape[1]):
        edges = np.histogram_bin_edges(mu[:, d], bins=bins)
        out[:, d] = np.digitize(mu[:, d], edges[1:-1])
    return out


def _labels(factors: dict[str, list]) -> dict[str, np.ndarray]:
    """Each factor's values as integer codes."""
    return {k: np.unique(np.asarray(v), return_inverse=True)[1] for k, v in factors.items()}


def mig(mu: np.ndarray, factors: dict[str, list], bins: int = 20) -> dict[str, float]:
    """MIG overall and per factor (`mig_<factor>`); needs at least two latent dimensions."""
    codes = discretize(mu, bins)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two latent dimensions")
    out = {}
    for name, v in _labels(factors).items():
        entropy = mutual_info_score(v, v)  # H(v) in nats
        if entropy == 0:
            continue  # a constant factor carries nothing to find
        mi = np.sort([mutual_info_score(v, codes[:, d]) for d in range(codes.shape[1])])[::-1]
        out[f"mig_{name}"] = float((mi[0] - mi[1]) / entropy)
    out["mig"] = float(np.mean(list(out.values()))) if out else 0.0
    return out


def _entropy(p: np.ndarray, base: int) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(base)) if base > 1 else 0.0


def dci_scores(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix R [D, K] (non-negative)."""
    r = np.asarray(importance, dtype=float)
    n_dims, n_factors = r.shape
    total = r.sum()
    if total <= 0:
        return 0.0, 0.0
    rows = r.sum(axis=1)
    disentanglement = sum(rows[j] / total * (1 - _entropy(r[j] / rows[j], n_factors))
                          for j in range(n_dims) if rows[j] > 0)  # fmt: skip
    cols = r.sum(axis=0)
    completeness = np.mean([1 - _entropy(r[:, k] / cols[k], n_dims) if cols[k] > 0 else 0.0
                            for k in range(n_factors)])  # fmt: skip
    return float(disentanglement), float(completeness)


def dci(mu: np.ndarray, factors: dict[str, list], seed: int = 0) -> dict[str, float]:
    """DCI disentanglement, completeness and informativeness (held-out accuracy, a 20 % split);
    with a single factor (a labelled corpus) disentanglement is 1 whatever the code: left out."""
    mu = np.asarray(mu, dtype=float)
    labels = _labels(factors)
    importance, accuracy = np.zeros((mu.shape[1], len(labels))), []
    for k, v in enumerate(labels.values()):
        x_tr, x_te, y_tr, y_te = train_test_split(mu, v, test_size=0.2, random_state=seed)
        forest = RandomForestClassifier(n_estimators=50, max_features=None, random_state=seed).fit(
            x_tr, y_tr
        )
        importance[:, k] = forest.feature_importances_
        accuracy.append(forest.score(x_te, y_te))
    d, c = dci_scores(importance)
    out = {"dci_disentanglement": d} if len(labels) > 1 else {}
    return {**out, "dci_completeness": c, "dci_informativeness": float(np.mean(accuracy))}
