"""Evaluation metrics of a sentence VAE, all per sentence in nats unless stated.

rec       E_q[-log p(x|z)], one sample z ~ q(z|x)                        (Bowman et al. 2016)
kl        KL(q(z|x) || N(0, I)), analytic, no threshold
neg_elbo  rec + kl  (an upper bound on -log p(x))
nll       -log p(x) by importance weighting with K samples from q(z|x):
          log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K
          (Burda et al. 2016; K = 500 in He et al. 2019, Li et al. 2019, Optimus)
ppl       exp(sum nll / sum target tokens incl. EOS)          (per subword)
ppl_word  exp(sum nll / (sum words + one EOS per sentence))   (per word, comparable across
          tokenizers; the convention of He et al. 2019 and Li et al. 2019)
ppl_elbo  exp(sum neg_elbo / sum target tokens)  (the paper's bound: an upper bound on ppl)
mi        I_q(x; z) = E_x E_q(z|x)[log q(z|x) - log q(z)] with the aggregate posterior
          q(z) = 1/N sum_n q(z|x_n) over the whole evaluation set (He et al. 2019, Optimus)
au        #dims with Var_x(E_q[z_d|x]) >= delta, delta = 0.01  (Burda et al. 2016)

The released code's variants are kept as options, documented where used: `mi_mode="batch"`
averages MI over minibatches, which caps it at log(batch size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from t5vae.data.corpora import batch_indices, collate, encode
from t5vae.model.objectives import kl_per_dim, log_normal_diag
from t5vae.model.vae import evaluating, reparameterize
from t5vae.utils.progress import bar


@dataclass(frozen=True)
class Metric:
    """One metric: how it is computed (description), shown (style) and read (direction)."""

    name: str
    description: str
    lower_is_better: bool | None = None  # None: neither (a count, or more is not better)
    style: str = "nats"  # table format: nats (2 decimals), ppl (3 significant digits >= 1000),
    #                      count (integer; 1 decimal as a mean over seeds), ratio (3 decimals)
    tables: tuple[str, ...] = ()  # the stages whose table has a column for it, in this order
    curve: bool = False  # plotted per epoch (validation) in the training curves
    bounds: tuple[float | None, float | None] = (None, None)  # the values it can take
    # the smallest difference that means anything: a number, or the count (a column of the
    # results, e.g. n_sentences) whose reciprocal it is; 0: continuous
    resolution: float | str = 0.0

    def format(self, value: float, n: int = 1) -> str:
        if self.style == "count":
            return f"{int(value)}" if n == 1 else f"{value:.1f}"
        if self.style == "ratio":
            return f"{value:.3f}"
        if self.style == "ppl" and abs(value) >= 1000:
            return f"{value:.3g}"
        return f"{value:.2f}"


_P1, _P2, _BOTH = ("phase1",), ("phase2",), ("phase1", "phase2")
# the latent-space table (phase 2 runs, datasets with known factors or labels)
_LATENT = ("latent",)
METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("ppl", "exp(sum nll / tokens incl. EOS): perplexity per subword", True, "ppl", _BOTH,
           bounds=(1.0, None)),
    Metric("ppl_word", "exp(sum nll / (words + one EOS per sentence)): per word, comparable "
           "across tokenizers (He et al. 2019, Li et al. 2019)", True, "ppl", _P2, bounds=(1.0, None)),
    Metric("ppl_elbo", "exp(sum neg_elbo / tokens): the paper's bound on ppl", True, "ppl", _P2,
           bounds=(1.0, None)),
    Metric("nll", "-log p(x) by importance weighting with K samples of q(z|x) (Burda et al. 2016)",
           True, "nats", _BOTH, curve=False, bounds=(0.0, None)),
    Metric("neg_elbo", "rec + kl: an upper bound on -log p(x)", True, "nats", _P2, curve=True,
           bounds=(0.0, None)),
    Metric("rec", "E_q[-log p(x|z)], one sample z ~ q(z|x) (Bowman et al. 2016)", True, "nats",
           _BOTH, curve=True, bounds=(0.0, None)),
    Metric("kl", "KL(q(z|x) || N(0, I)), analytic, no threshold", None, "nats", _BOTH, curve=True,
           bounds=(0.0, None)),
    Metric("mi", "I_q(x; z) with the aggregate posterior over the whole set (He et al. 2019)",
           False, "nats", _BOTH, curve=True, bounds=(0.0, None)),
    Metric("au", "active units: dimensions with Var_x(E_q[z_d|x]) >= 0.01 (Burda et al. 2016)",
           False, "count", _BOTH, curve=True, bounds=(0.0, None), resolution=1.0),
    Metric("bleu", "corpus BLEU (sacrebleu) of greedy reconstructions from mu against the inputs",
           False, "nats", _BOTH, bounds=(0.0, 100.0)),
    Metric("mi_batch256", "the released code's MI: the aggregate posterior of each batch of 256 "
           "sentences, averaged over batches (at most log 256 = 5.5 nats)", False, "nats",
           bounds=(0.0, None)),
    Metric("mu_norm", "mean ||E_q[z|x]||_2 over the set: the scale of the code (the prior's "
           "samples have norm about sqrt(latent_dim))", None, "nats", _P1, bounds=(0.0, None)),
    # one of the n prior samples decoded otherwise moves distinct-n by about 1/n
    Metric("distinct_1", "unique word unigrams / all, over sentences decoded from z ~ N(0, I)",
           False, "ratio", bounds=(0.0, 1.0), resolution="n_prior_samples"),
    Metric("distinct_2", "unique word bigrams / all, over sentences decoded from z ~ N(0, I) "
           "(Li et al. 2016)", False, "ratio", _P2, bounds=(0.0, 1.0), resolution="n_prior_samples"),
    # the probe predicts each of the n test sentences once (cross-validation): steps of 1/n
    Metric("probe_*", "5-fold CV accuracy of a linear probe from z ~ q(z|x) to a known factor "
           "(built-in corpus)", False, "nats", bounds=(0.0, 1.0), resolution="n_sentences"),
    Metric("chance_*", "majority-class rate of that factor (what a probe gets from nothing)", None,
           "nats", bounds=(0.0, 1.0), resolution="n_sentences"),
    # the latent space (evaluation.latent): controlled generation scored against the known factors,
    # disentanglement, paths through z, diversity of prior samples; the phase-2 "latent space" table
    Metric("transfer_accuracy_*", "attribute shift z = mu_x + alpha v_c (alpha after the a): the "
           "fraction of shifted test sentences whose decoding has the target value c; mean over factors",
           False, "ratio", _LATENT, bounds=(0.0, 1.0), resolution=0.01),
    Metric("content_kept_*", "attribute shift at alpha: the fraction whose other factors are unchanged",
           False, "ratio", _LATENT, bounds=(0.0, 1.0), resolution=0.01),
    Metric("grammatical_*", "attribute shift at alpha: the fraction decoded to a sentence of the "
           "grammar", False, "ratio", _LATENT, bounds=(0.0, 1.0), resolution=0.01),
    Metric("transfer_bleu_*", "attribute shift at alpha: corpus BLEU of the shifted sentences to "
           "their sources", None, "nats", bounds=(0.0, 100.0)),
    Metric("conditional_*", "class-conditional samples z ~ N(mean(mu | c), diag var(mu | c)): the "
           "fraction decoded to value c (accuracy) or to the grammar (grammatical)", False, "ratio",
           _LATENT, bounds=(0.0, 1.0)),
    Metric("lerp_*", "lerp paths between test sentences: the fraction of grammatical steps, and of "
           "factors that change at most once along a path (monotone)", False, "ratio", _LATENT,
           bounds=(0.0, 1.0)),
    Metric("slerp_*", "the same for slerp paths", False, "ratio", bounds=(0.0, 1.0)),
    Metric("traversal_*", "the same for traversals of the 3 most informative dimensions (by KL) "
           "from -3 to 3", False, "ratio", bounds=(0.0, 1.0)),
    Metric("mig", "mutual information gap: mean over factors of the gap between the two dimensions "
           "most informative of it, over its entropy (Chen et al. 2018)", False, "ratio",
           _LATENT, bounds=(0.0, 1.0)),
    Metric("mig_*", "the mutual information gap of one factor (Chen et al. 2018)", False, "ratio",
           bounds=(0.0, 1.0)),
    Metric("dci_disentanglement", "DCI disentanglement: 1 - entropy of each dimension's importance "
           "over the factors, weighted (Eastwood & Williams 2018)", False, "ratio", _LATENT,
           bounds=(0.0, 1.0)),
    Metric("dci_completeness", "DCI completeness: 1 - entropy of each factor's importance over the "
           "dimensions (Eastwood & Williams 2018)", False, "ratio", bounds=(0.0, 1.0)),
    Metric("dci_informativeness", "DCI informativeness: held-out accuracy of the factors from mu "
           "(Eastwood & Williams 2018)", False, "ratio", bounds=(0.0, 1.0)),
    Metric("self_bleu", "mean sentence BLEU of each prior sample against the others (Zhu et al. "
           "2018); lower is more diverse", True, "nats", _LATENT, bounds=(0.0, 100.0)),
    Metric("repetition_rate", "fraction of prior samples that repeat an earlier one", True, "ratio",
           _LATENT, bounds=(0.0, 1.0), resolution="n_prior_samples"),
    Metric("n_sentences", "sentences evaluated", None, "count", resolution=1.0),
    Metric("n_tokens", "target tokens incl. EOS", None, "count", resolution=1.0),
    Metric("n_words", "whitespace words", None, "count", resolution=1.0),
    Metric("n_truncated", "sentences cut to the dataset's max_length", None, "count", resolution=1.0),
]}  # fmt: skip


def metric(name: str) -> Metric:
    """The registry entry of a metric (families such as probe_<factor> by their longest prefix)."""
    if name in METRICS:
        return METRICS[name]
    parts = name.split("_")
    # the longest family first: transfer_accuracy_* before transfer_*
    for i in range(len(parts) - 1, 0, -1):
        family = "_".join(parts[:i]) + "_*"
        if family in METRICS:
            return METRICS[family]
    return Metric(name, "")


# What evaluate() returns: every results file has these (a metric added to the registry later is
# optional, so older results files stay complete and tabulate with an empty column).
METRIC_KEYS = (
    "rec", "kl", "neg_elbo", "nll", "ppl", "ppl_word", "ppl_elbo", "mi", "au",
    "n_sentences", "n_tokens", "n_words",
)  # fmt: skip


LOGITS_BUDGET = 2**27  # floats of decoder logits per IW chunk (512 MiB in fp32)


def iw_log_marginal(
    log_px_given_z: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log p(x) estimate [B] from K samples z [B, K, D] ~ q(z|x) and log p(x|z_k) [B, K].

    log w_k = log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x);  result = logsumexp_k log w_k - log K.
    Its expectation is <= log p(x) (Jensen) and it increases to log p(x) as K grows.
    """
    log_prior = log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    log_q = log_normal_diag(z, mu.unsqueeze(1), logvar.unsqueeze(1))
    log_w = log_px_given_z + log_prior - log_q
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def log_aggregate_posterior(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, chunk: int = 1024
) -> torch.Tensor:
    """log q(z_i) = logsumexp_n log q(z_i|x_n) - log N for each row z_i of z [M, D]."""
    out = []
    for start in range(0, z.shape[0], chunk):
        zi = z[start : start + chunk].unsqueeze(1)  # [m, 1, D]
        log_q = log_normal_diag(zi, mu.unsqueeze(0), logvar.unsqueeze(0))  # [m, N]
        out.append(torch.logsumexp(log_q, dim=1) - math.log(mu.shape[0]))
    return torch.cat(out)


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> float:
    """I_q(x; z) with one sample z_n ~ q(z|x_n) per sentence and q(z) over all N sentences:

        MI ~= 1/N sum_n [log q(z_n|x_n) - log q(z_n)],  q(z) = 1/N sum_m q(z|x_m).

    He et al. (2019) use the exact entropy for the first term; pairing both terms on the same
    sample (as here) has the same expectation and far less variance: when every posterior is the
    same the estimate is exactly 0, where the analytic-entropy version scatters by ~sqrt(D/2N).
    """
    mu, logvar, z = mu.double(), logvar.double(), z.double()
    log_q_zx = log_normal_diag(z, mu, logvar)
    return float((log_q_zx - log_aggregate_posterior(z, mu, logvar)).mean())


def batched_mutual_information(
    mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, batch_size: int
) -> float:
    """The released code's MI: `mutual_information` per minibatch, averaged (<= log batch size)."""
    values, weights = [], []
    for start in range(0, mu.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        values.append(mutual_information(mu[sl], logvar[sl], z[sl]))
        weights.append(mu[sl].shape[0])
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def active_units(mu: torch.Tensor, delta: float = 0.01) -> int:
    """Number of dimensions d with Var_n(mu_nd) >= delta (unbiased variance over the set)."""
    if mu.shape[0] < 2:
        return 0
    return int((mu.double().var(dim=0, unbiased=True) >= delta).sum())


def safe_exp(x: float) -> float:
    """exp(x), or inf instead of OverflowError (an untrained model's ppl can overflow)."""
    return math.exp(x) if x < 709 else math.inf


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def evaluate(
    model,
    tokenizer,
    sentences: list[str],
    iw_samples: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    max_length: int | None = None,
    mi_mode: str = "dataset",
    au_delta: float = 0.01,
    decoder_rows: int | None = None,
    progress: bool = True,
    return_posteriors: bool = False,
    cache_dir: str | None = None,
) -> dict:
    """All metrics of the module docstring on `sentences` (a list of strings).

    The encoder runs once per sentence; the K importance samples are decoded in chunks of at most
    `decoder_rows` (sentence, sample) pairs (default: as many as keep the logits of one chunk
    under LOGITS_BUDGET floats, at least batch_size). The first importance sample
    also gives `rec` and the z used for MI, so every number comes from the same draws.
    `return_posteriors=True` adds "mu", "logvar" and "z" (the first sample) tensors, outside
    METRIC_KEYS.
    `cache_dir` keeps the tokenised sentences as Arrow files (data.encode).
    """
    if iw_samples < 1:
        raise ValueError(f"iw_samples must be >= 1, got {iw_samples}")
    if mi_mode not in ("dataset", "batch"):
        raise ValueError(f"mi_mode must be 'dataset' or 'batch', got {mi_mode!r}")
    if not sentences:
        raise ValueError("evaluate() needs at least one sentence")
    with evaluating(model):
        return _evaluate(model, tokenizer, sentences, iw_samples, batch_size, seed, max_length,
                         mi_mode, au_delta, decoder_rows, progress, return_posteriors, cache_dir)  # fmt: skip


def _evaluate(model, tokenizer, sentences, iw_samples, batch_size, seed, max_length, mi_mode,
              au_delta, decoder_rows, progress, return_posteriors, cache_dir) -> dict:  # fmt: skip
    device = model_device(model)
    enc = encode(tokenizer, sentences, max_length=max_length or 10**9, cache_dir=cache_dir)
    pad_id = model.pad_id
    generator = torch.Generator(device="cpu").manual_seed(seed)

    n = len(sentences)
    mus, logvars, zs = [None] * n, [None] * n, [None] * n
    rec, kl, nll = (torch.zeros(n, dtype=torch.float64) for _ in range(3))
    batches = batch_indices([len(x) for x in enc.ids], batch_size, shuffle=False)
    for idx in bar(batches, progress, desc="evaluate", leave=False):
        batch = {k: v.to(device) for k, v in collate([enc.ids[i] for i in idx], pad_id).items()}
        mu, logvar = model.encode(batch["input_ids"], batch["attention_mask"])
        mu, logvar = mu.float(), logvar.float()
        b, d = mu.shape
        z = reparameterize(mu, logvar, generator, samples=iw_samples)  # [b, K, D]
        log_px = torch.empty((b, iw_samples), device=device)
        rows = decoder_rows or max(
            b, LOGITS_BUDGET // (batch["labels"].shape[1] * model.t5.config.vocab_size)
        )
        per_chunk = max(1, rows // b)
        for k0 in range(0, iw_samples, per_chunk):
            k1 = min(iw_samples, k0 + per_chunk)
            zk = z[:, k0:k1].reshape(-1, d)
            labels = batch["labels"].repeat_interleave(k1 - k0, dim=0)
            log_px[:, k0:k1] = model.log_likelihood(zk, labels).float().view(b, k1 - k0)
        ll = iw_log_marginal(log_px.double(), z.double(), mu.double(), logvar.double())
        kl_b = kl_per_dim(mu.double(), logvar.double()).sum(-1)
        for j, i in enumerate(idx):
            mus[i], logvars[i], zs[i] = mu[j].cpu(), logvar[j].cpu(), z[j, 0].cpu()
        ids = torch.tensor(idx)
        rec[ids] = -log_px[:, 0].double().cpu()
        kl[ids] = kl_b.cpu()
        nll[ids] = -ll.cpu()

    mu_all, logvar_all, z_all = torch.stack(mus), torch.stack(logvars), torch.stack(zs)
    if mi_mode == "dataset":
        mi = mutual_information(mu_all, logvar_all, z_all)
    else:
        mi = batched_mutual_information(mu_all, logvar_all, z_all, batch_size)
    n_tokens = enc.n_tokens
    n_words = sum(len(s.split()) for s in sentences)
    neg_elbo = rec + kl
    result = {
        "rec": float(rec.mean()),
        "kl": float(kl.mean()),
        "neg_elbo": float(neg_elbo.mean()),
        "nll": float(nll.mean()),
        "ppl": safe_exp(float(nll.sum()) / n_tokens),
        "ppl_word": safe_exp(float(nll.sum()) / (n_words + n)),
        "ppl_elbo": safe_exp(float(neg_elbo.sum()) / n_tokens),
        "mi": mi,
        "au": active_units(mu_all, au_delta),
        "n_sentences": n,
        "n_tokens": n_tokens,
        "n_words": n_words,
    }
    if return_posteriors:
        result["mu"], result["logvar"], result["z"] = mu_all, logvar_all, z_all
    return result
