"""Posterior-collapse diagnosis of a run from its metrics: collapsed, weak or informative, with
the rule that decided it.

Collapse is q(z|x) = p(z) for every x (Bowman et al. 2016; He et al. 2019): the code carries
nothing, so KL and MI go to 0 and no dimension's mean varies with the input (AU = 0), and every
prior sample decodes to the same sentence. The rules, first match wins:

    collapsed    AU = 0, or MI < 0.05 nats, or KL < 0.05 nats, or the prior samples all decode to
                 one sentence
    weak         MI < 1 nat (the code tells apart fewer than e groups of sentences), or fewer than
                 a quarter of the latent dimensions are active
    informative  otherwise

The thresholds (0.05 nats, 1 nat, a quarter of the dimensions) are this package's choices, not
measurements: stated here, and with every diagnosis, so that a reader can apply others.
"""

from __future__ import annotations

from dataclasses import dataclass

COLLAPSED_BELOW = 0.05  # nats of MI or KL
WEAK_MI_BELOW = 1.0  # nats
WEAK_ACTIVE_FRACTION = 0.25


@dataclass(frozen=True)
class Diagnosis:
    label: str  # collapsed | weak | informative
    rule: str  # the rule that decided, with the values

    def __str__(self) -> str:
        return f"{self.label} ({self.rule})"


def diagnose(metrics: dict, latent_dim: int, prior_samples: list[str] | None = None) -> Diagnosis:
    """The diagnosis of a run from its `au`, `mi`, `kl` (evaluate()'s keys) and, when given, the
    sentences decoded from prior samples."""
    au, mi, kl = metrics["au"], metrics["mi"], metrics["kl"]
    if au == 0:
        return Diagnosis("collapsed", "AU = 0: no dimension's mean varies with the input")
    if mi < COLLAPSED_BELOW:
        return Diagnosis("collapsed", f"MI = {mi:.3f} < {COLLAPSED_BELOW} nats")
    if kl < COLLAPSED_BELOW:
        return Diagnosis("collapsed", f"KL = {kl:.3f} < {COLLAPSED_BELOW} nats")
    if prior_samples is not None and len(prior_samples) > 1 and len(set(prior_samples)) == 1:
        return Diagnosis(
            "collapsed", f"all {len(prior_samples)} prior samples decode to one sentence"
        )
    if mi < WEAK_MI_BELOW:
        return Diagnosis("weak", f"MI = {mi:.2f} < {WEAK_MI_BELOW} nat")
    if au < WEAK_ACTIVE_FRACTION * latent_dim:
        return Diagnosis("weak", f"AU = {au} < {WEAK_ACTIVE_FRACTION} x {latent_dim} dimensions")
    return Diagnosis("informative", f"MI = {mi:.2f} nats, AU = {au} of {latent_dim}")
