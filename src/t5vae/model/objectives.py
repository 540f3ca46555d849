"""Training objectives: the collapse remedies as one config (`Objective`) and its loss (`vae_loss`).

Loss per sentence (nats):  rec + beta(step) * sum_i max(lambda, KL_i)     (training)
where rec = -log p(x|z) summed over target tokens (EOS included, padding excluded), and
KL_i = KL(q(z_i|x) || N(0, 1)) per latent dimension. Evaluation always uses the plain KL.
A remedy is a field of `Objective` (validated there, the params boundary) and, when it adds a term,
a few lines of `vae_loss`: see CONTRIBUTING.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from t5vae.model import released
from t5vae.model.vae import labels_to_decoder_inputs
from t5vae.utils.checks import ParamsError, check, check_choice, check_prob


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


# ---------------------------------------------------------------------- KL-weight schedules
def _constant(s: KLSchedule, step: int) -> float:
    return s.max_weight


def _linear(s: KLSchedule, step: int) -> float:
    warmup = max(1.0, s.warmup_ratio * s.total_steps)
    return s.max_weight * min(1.0, step / warmup)


def _cyclical(s: KLSchedule, step: int) -> float:
    cycle = s.total_steps / s.n_cycles
    pos = (step % cycle) / cycle  # position within the cycle in [0, 1)
    if pos < s.ratio_zero:
        return 0.0
    return s.max_weight * min(1.0, (pos - s.ratio_zero) / s.ratio_increase)


def _released(s: KLSchedule, step: int) -> float:
    cycle = 100 * s.steps_per_epoch
    return s.max_weight * (step % cycle) / cycle


SCHEDULE_FUNCTIONS = {"constant": _constant, "linear": _linear, "cyclical": _cyclical,
                      "released": _released}  # fmt: skip
SCHEDULES = tuple(SCHEDULE_FUNCTIONS)


@dataclass
class KLScheduleConfig:
    """The shape of beta(step), the KL weight (a profile's or a technique's `kl_schedule`).

    constant  beta = max_weight.
    linear    beta = max_weight * min(1, step / (warmup_ratio * total_steps))   (Bowman et al. 2016)
    cyclical  Fu et al. (2019): n_cycles cycles over total_steps; in each, beta = 0 for the first
              ratio_zero of the cycle, rises linearly over the next ratio_increase, then max_weight.
    released  the released code's ramp: beta = (step mod C) / C with C = 100 * steps_per_epoch,
              so beta stays below 0.1 in a 10-epoch run (kept to reproduce it, not as a default).
    """

    kind: str = "linear"
    max_weight: float = 1.0
    warmup_ratio: float = 0.5
    n_cycles: int = 4
    ratio_increase: float = 0.5
    ratio_zero: float = 0.0

    def __post_init__(self):
        check_choice(self.kind, SCHEDULES, "kind")
        check(self.max_weight >= 0, "max_weight", f"must be >= 0, got {self.max_weight}")
        check(
            0 < self.warmup_ratio <= 1,
            "warmup_ratio",
            f"must be in (0, 1], got {self.warmup_ratio}",
        )
        check(self.n_cycles >= 1, "n_cycles", f"must be >= 1, got {self.n_cycles}")
        check(0 <= self.ratio_zero and 0 < self.ratio_increase
              and self.ratio_zero + self.ratio_increase <= 1, "ratio_increase",
              "cyclical schedule needs ratio_zero >= 0, ratio_increase > 0, sum <= 1")  # fmt: skip


@dataclass
class KLSchedule(KLScheduleConfig):
    """beta(step) of one run: a schedule's shape over the run's total_steps (0-based steps)."""

    total_steps: int = 1
    steps_per_epoch: int = 1

    def __post_init__(self):
        super().__post_init__()
        check(self.total_steps >= 1 and self.steps_per_epoch >= 1, "total_steps",
              "total_steps and steps_per_epoch must be >= 1")  # fmt: skip

    @classmethod
    def of(cls, config: KLScheduleConfig, total_steps: int, steps_per_epoch: int) -> KLSchedule:
        return cls(**asdict(config), total_steps=total_steps, steps_per_epoch=steps_per_epoch)

    def __call__(self, step: int) -> float:
        return SCHEDULE_FUNCTIONS[self.kind](self, step)

    def settled_from(self) -> int:
        """The first step from which beta keeps its final value for the rest of the run.

        Early stopping counts only epochs that end there: a validation -ELBO measured while beta
        still rises belongs to an objective the run is still moving away from. The released ramp
        never settles (total_steps).
        """
        if self.kind == "constant":
            return 0
        if self.kind == "linear":
            return math.ceil(max(1.0, self.warmup_ratio * self.total_steps))
        if self.kind == "cyclical":
            cycle = self.total_steps / self.n_cycles
            return math.ceil(cycle * (self.n_cycles - 1 + self.ratio_zero + self.ratio_increase))
        return self.total_steps


# ---------------------------------------------------------------------- the objective
PHASE1_SCHEDULE = KLScheduleConfig("constant", max_weight=0.0)  # phase 1: no KL term


@dataclass
class Objective:
    """What a run minimises: one config per technique, carried whole from its YAML to the loss.

        loss = rec + beta(step) * sum_d max(lambda, KL_d)
    with rec = -log p(x | z), z ~ q(z | x~) where x~ is x with up to `denoise_prob` of its tokens
    deleted (the decoder always reconstructs the clean x), and beta from `kl_schedule` (None: the
    profile's phase schedule). Phase 1 is the same objective with beta = 0.
    `vae_loss` returns every term by name; training logs whatever it returns.
    """

    kl_threshold: float | None = None  # lambda (free bits per dimension); None: plain KL
    denoise_prob: float = 0.0  # p: token deletion on the encoder input
    sample_z: bool = True  # False: z = mu (a plain autoencoder)
    kl_schedule: KLScheduleConfig | None = None
    word_dropout: float = 0.0  # decoder inputs replaced by <unk> (Bowman et al. 2016)
    bow_weight: float = 0.0  # weight of the bag-of-words loss on z (Zhao et al. 2017)
    # the released code's loss defects (released.py; set from a profile's `released:` section)
    deletion_swap: bool = False
    rec_per_token: bool = False

    def __post_init__(self):
        if isinstance(self.kl_schedule, dict):  # (a checkpoint's stored config)
            self.kl_schedule = KLScheduleConfig(**self.kl_schedule)
        check(self.kl_threshold is None or self.kl_threshold >= 0, "kl_threshold",
              f"must be >= 0 or null, got {self.kl_threshold}")  # fmt: skip
        check_prob("denoise_prob", self.denoise_prob)
        check_prob("word_dropout", self.word_dropout)
        check(self.bow_weight >= 0, "bow_weight", f"must be >= 0, got {self.bow_weight}")

    def extra_modules(self, model) -> nn.ModuleDict:
        """Modules the loss trains besides the model (saved in the training state, not in the
        model: evaluation and generation never use them)."""
        extra = nn.ModuleDict()
        if self.bow_weight:  # f(z): an MLP from z to vocabulary logits (Zhao et al. 2017)
            d_model, vocab = model.t5.config.d_model, model.t5.config.vocab_size
            extra["bow"] = nn.Sequential(nn.Linear(model.config.latent_dim, d_model), nn.Tanh(),
                                         nn.Linear(d_model, vocab))  # fmt: skip
        return extra


def vae_loss(
    model,
    batch: dict[str, torch.Tensor],
    kl_weight: float,
    objective: Objective | None = None,
    generator: torch.Generator | None = None,
    extra: nn.ModuleDict | None = None,
    unk_id: int | None = None,
) -> dict[str, torch.Tensor]:
    """One training pass of `objective`: {"loss": mean over sentences of the loss, and each
    term, detached, by name (rec, kl: the plain KL, kl_term: the thresholded KL)}."""
    objective = objective or Objective()
    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    if objective.denoise_prob > 0:
        input_ids, mask = delete_tokens(
            input_ids, mask, objective.denoise_prob, generator=generator, pad_id=model.pad_id
        )
        if objective.deletion_swap:
            input_ids, mask = released.swap_ids_and_mask(input_ids, mask)
    decoder_inputs = None
    if objective.word_dropout > 0:
        decoder_inputs = word_dropout(batch["labels"], objective.word_dropout, unk_id, model.pad_id,
                                      model.start_id, generator)  # fmt: skip
    out = model(input_ids, mask, batch["labels"], sample=objective.sample_z, generator=generator,
                decoder_input_ids=decoder_inputs)  # fmt: skip
    kl_dims = kl_per_dim(out["mu"], out["logvar"])
    if objective.rec_per_token:  # mean over B x T positions (x the released padding to 256)
        padded = max(out["token_nll"].shape[1], model.config.pad_to or 0)
        rec = out["token_nll"].sum() / (out["token_nll"].shape[0] * padded)
    else:
        rec = out["rec"].mean()
    kl_term = thresholded_kl(kl_dims, objective.kl_threshold).mean()
    loss = rec + kl_weight * kl_term if kl_weight else rec
    terms = {
        "rec": rec.detach(),
        "kl": kl_dims.sum(-1).mean().detach(),
        "kl_term": kl_term.detach(),
    }
    if objective.bow_weight:
        bow = bag_of_words_nll(extra["bow"](out["z"]), batch["labels"]).mean()
        loss = loss + objective.bow_weight * bow
        terms["bow"] = bow.detach()
    return {"loss": loss, **terms}


def bag_of_words_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-sum_t log softmax(f(z))[x_t] per sentence [B] (Zhao et al. 2017): one distribution over the
    vocabulary, from z alone, must explain every token of x (order ignored; EOS included,
    padding -100 excluded), which forces z to carry the sentence's words."""
    log_p = torch.log_softmax(logits.float(), dim=-1)  # [B, V]
    real = labels >= 0
    picked = log_p.gather(1, labels.clamp_min(0))  # [B, T]
    return -(picked * real).sum(-1)


def word_dropout(
    labels: torch.Tensor,
    word_dropout: float,
    unk_id: int | None,
    pad_id: int,
    start_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Teacher-forcing decoder inputs [start, x_1, ..., x_{T-1}] with each x_t replaced by <unk>
    with probability `word_dropout` (Bowman et al. 2016, "word dropout"): the decoder must lean
    on z for what it can no longer read from the previous words. The start token, padding and
    the targets are never changed."""
    if unk_id is None:
        raise ParamsError("word_dropout: the tokenizer has no unknown token to drop words to")
    clean = labels.masked_fill(labels == pad_id, -100)
    inputs = labels_to_decoder_inputs(clean, pad_id, start_id)
    real = torch.zeros_like(inputs, dtype=torch.bool)
    real[:, 1:] = clean[:, :-1] >= 0  # inputs 1.. are the previous targets
    device = generator.device if generator is not None else labels.device
    u = torch.rand(inputs.shape, generator=generator, device=device).to(labels.device)
    return inputs.masked_fill(real & (u < word_dropout), unk_id)


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
    check_prob("denoise_prob", denoise_prob)
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
