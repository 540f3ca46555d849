"""Training objective pieces: KL, KL thresholding, KL-weight schedules, token-deletion denoising.

Loss per sentence (nats):  rec + beta(step) * sum_i max(lambda, KL_i)     (training)
where rec = -log p(x|z) summed over target tokens (EOS included, padding excluded), and
KL_i = KL(q(z_i|x) || N(0, 1)) per latent dimension. Evaluation always uses the plain KL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("constant", "linear", "cyclical", "released")


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) = 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2), per dimension."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def thresholded_kl(kl_dims: torch.Tensor, kl_threshold: float | None) -> torch.Tensor:
    """sum_i max(lambda, KL_i) per sentence [B] (the paper's KL thresholding, per example and dim).

    A dimension whose KL is below lambda counts as lambda and gets no gradient, so the optimiser
    has no incentive to push it further towards the prior (free bits, Kingma et al. 2016;
    Li et al. 2019). `kl_threshold=None` or 0 gives the plain KL.
    """
    if kl_threshold:
        kl_dims = torch.clamp(kl_dims, min=float(kl_threshold))
    return kl_dims.sum(-1)


@dataclass
class KLSchedule:
    """beta(step): the KL weight at optimisation step `step` (0-based).

    constant  beta = max_weight.
    linear    beta = max_weight * min(1, step / (warmup_ratio * total_steps))   (Bowman et al. 2016)
    cyclical  Fu et al. (2019): n_cycles cycles over total_steps; in each, beta = 0 for the first
              ratio_zero of the cycle, rises linearly over the next ratio_increase, then max_weight.
    released  the released code's ramp: beta = (step mod C) / C with C = 100 * steps_per_epoch,
              so beta stays below 0.1 in a 10-epoch run (kept to reproduce it, not as a default).
    """

    kind: str = "linear"
    total_steps: int = 1
    steps_per_epoch: int = 1
    max_weight: float = 1.0
    warmup_ratio: float = 0.5
    n_cycles: int = 4
    ratio_increase: float = 0.5
    ratio_zero: float = 0.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"kl_schedule kind must be one of {SCHEDULES}, got {self.kind!r}")
        if self.total_steps < 1 or self.steps_per_epoch < 1:
            raise ValueError("total_steps and steps_per_epoch must be >= 1")
        if not 0 < self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in (0, 1], got {self.warmup_ratio}")
        if self.n_cycles < 1:
            raise ValueError(f"n_cycles must be >= 1, got {self.n_cycles}")
        if not (
            0 <= self.ratio_zero
            and 0 < self.ratio_increase
            and self.ratio_zero + self.ratio_increase <= 1
        ):
            raise ValueError(
                "cyclical schedule needs ratio_zero >= 0, ratio_increase > 0, sum <= 1"
            )

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.max_weight
        if self.kind == "linear":
            warmup = max(1.0, self.warmup_ratio * self.total_steps)
            return self.max_weight * min(1.0, step / warmup)
        if self.kind == "cyclical":
            cycle = self.total_steps / self.n_cycles
            pos = (step % cycle) / cycle  # position within the cycle in [0, 1)
            if pos < self.ratio_zero:
                return 0.0
            return self.max_weight * min(1.0, (pos - self.ratio_zero) / self.ratio_increase)
        cycle = 100 * self.steps_per_epoch  # "released"
        return self.max_weight * (step % cycle) / cycle


def delete_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    denoise_prob: float,
    generator: torch.Generator | None = None,
    keep_last: bool = True,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-deletion noise for the encoder input, vectorised over the batch.

    For each sentence with n deletable tokens (real tokens, minus the final EOS if keep_last),
    draw k ~ Uniform{0, ..., floor(denoise_prob * n)} and delete k positions chosen uniformly
    without replacement; the remaining tokens keep their order and are packed to the left.
    Returns new (input_ids, attention_mask) trimmed to the longest result. Only the encoder input
    changes: the decoder target is never touched by this function.
    """
    if not 0 <= denoise_prob < 1:
        raise ValueError(f"denoise_prob must be in [0, 1), got {denoise_prob}")
    if denoise_prob == 0:
        return input_ids, attention_mask
    batch, length = input_ids.shape
    device = input_ids.device
    real = attention_mask.bool()
    lengths = real.sum(1)
    deletable = real.clone()
    if keep_last:
        last = (lengths - 1).clamp_min(0)
        deletable[torch.arange(batch, device=device), last] = False
    n_deletable = deletable.sum(1)
    max_delete = torch.floor(n_deletable.double() * denoise_prob).long()
    gen_device = generator.device if generator is not None else device
    u = torch.rand(batch, generator=generator, device=gen_device).to(device)
    n_delete = torch.floor(u * (max_delete + 1).double()).long().clamp(max=max_delete)
    scores = torch.rand(batch, length, generator=generator, device=gen_device).to(device)
    scores = scores.masked_fill(~deletable, 2.0)  # never chosen
    rank = scores.argsort(1).argsort(1)
    keep = real & ~(rank < n_delete.unsqueeze(1))
    # stable left-packing: kept positions first, in their original order
    order = ((~keep).long() * length + torch.arange(length, device=device).unsqueeze(0)).argsort(1)
    new_ids = input_ids.gather(1, order)
    new_mask = keep.gather(1, order)
    new_len = int(new_mask.sum(1).max()) if batch else 0
    new_mask = new_mask[:, :new_len]
    new_ids = new_ids[:, :new_len].masked_fill(~new_mask, pad_id)
    return new_ids, new_mask.to(attention_mask.dtype)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)
