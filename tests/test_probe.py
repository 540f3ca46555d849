"""Linear factor probes: near 1 when mu encodes a factor linearly, near chance when it doesn't."""

from __future__ import annotations

import numpy as np
import pytest

from t5vae.probe import factor_probe


def test_probe_separates_encoded_from_ignored_factors():
    rng = np.random.default_rng(0)
    n = 600
    factors = [
        {"topic": ["a", "b", "c"][i % 3], "noise": ["x", "y"][rng.integers(2)]} for i in range(n)
    ]
    mu = rng.normal(size=(n, 8))
    mu[:, 0] += 4 * np.array([["a", "b", "c"].index(f["topic"]) for f in factors])  # topic in dim 0
    res = factor_probe(mu, factors)
    assert res["probe_topic"] > 0.95
    assert res["chance_topic"] == pytest.approx(1 / 3)
    assert abs(res["probe_noise"] - 0.5) < 0.08  # not in mu: chance
