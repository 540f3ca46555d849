"""Linear factor probes: near 1 when mu encodes a factor linearly, near chance when it doesn't."""

from __future__ import annotations

import numpy as np
import pytest

from t5vae.evaluation.probe import factor_probe


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


def test_probe_on_samples_ignores_sub_noise_differences_of_the_mean():
    """A collapsed posterior whose means differ by far less than its noise carries nothing the
    decoder can use: a probe on z ~ q(z|x) is at chance, where a standardised probe on mu is not."""
    import torch

    from t5vae.model.vae import reparameterize

    n = 600
    factors = [{"tense": ["past", "present", "future"][i % 3]} for i in range(n)]
    mu = torch.zeros(n, 4, dtype=torch.float64)
    mu[:, 0] = 1e-3 * torch.tensor([i % 3 for i in range(n)], dtype=torch.float64)
    z = reparameterize(mu, torch.zeros_like(mu), torch.Generator().manual_seed(0))
    assert factor_probe(mu, factors)["probe_tense"] > 0.95
    assert abs(factor_probe(z, factors)["probe_tense"] - 1 / 3) < 0.08
