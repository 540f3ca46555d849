"""T5VAE: a pretrained T5 turned into a sentence VAE (Park & Lee, 2021).

    x --T5 encoder--> h[1..T] --masked pooling--> h̄ --Linear--> mu, logvar
    z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)                 (reparameterisation)
    z --latent_to_memory--> one key/value slot per decoder layer   (injection="memory")
    p(x | z) = prod_t p(x_t | x_<t, z)  from the T5 decoder with no encoder states.

The decoder sees the source only through z. With `injection="memory"` (the paper's scheme, as in
Optimus) z becomes an extra self-attention key/value at position 0 of every decoder layer and the
decoder's cross-attention sub-layers are skipped; with `injection="cross_attention"` z is projected
to a single "encoder state" the decoder cross-attends to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from huggingface_hub import ModelHubMixin
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn import functional as F
from transformers import DynamicCache, T5Config, T5ForConditionalGeneration

from t5vae.model import released
from t5vae.utils.checks import check, check_choice
from t5vae.utils.files import atomic_dir

POOLINGS = ("mean", "max")
INJECTIONS = ("memory", "cross_attention")
EMBEDDING_POLICIES = (
    "frozen",
    "untied",
    "trainable",
)  # phase 1: T5's tied embeddings (training.py)
CONFIG_NAME = "t5vae_config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class T5VAEConfig:
    """Everything needed to rebuild a T5VAE (the T5 config is stored as a dict)."""

    latent_dim: int = 32
    pooling: str = "max"
    injection: str = "memory"
    untied_encoder_embeddings: bool = False
    shared_kv: bool = False  # memory: one vector per layer used as key and value (released code)
    # the released code's defects, off unless a profile reproduces them (released.py)
    released_memory_view: bool = False
    released_pooling: bool = False
    pad_to: int | None = None  # encoder inputs padded to this many tokens (released: 256)
    base: str = "t5-small"
    t5_config: dict = field(default_factory=dict)

    def __post_init__(self):
        self.t5_config = json.loads(json.dumps(self.t5_config))  # the form it has on disk
        ok = isinstance(self.latent_dim, int) and not isinstance(self.latent_dim, bool)
        check(
            ok and self.latent_dim >= 1,
            "latent_dim",
            f"must be an integer >= 1, got {self.latent_dim!r}",
        )
        check_choice(self.pooling, POOLINGS, "pooling")
        check_choice(self.injection, INJECTIONS, "injection")


def masked_pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool `hidden` [B, T, H] over real tokens only (`mask` [B, T], 1 = token, 0 = padding).

    mean: sum_t m_t h_t / sum_t m_t;  max: max over {h_t : m_t = 1}. Padding never changes the result.
    """
    m = mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    if pooling == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(1).values
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (dropout off) inside the block; its previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def default_device() -> torch.device:
    """The device accelerate trains on here (CUDA, MPS or CPU): evaluation uses the same."""
    from accelerate import PartialState

    return PartialState().device


def reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    generator: torch.Generator | None = None,
    samples: int | None = None,
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) (Kingma & Welling, 2014).

    mu, logvar [..., D] -> z [..., D], or [..., samples, D] with `samples`. eps is drawn on the
    generator's device (a CPU generator also serves a model on the GPU), then moved to mu's.
    """
    shape = mu.shape if samples is None else (*mu.shape[:-1], samples, mu.shape[-1])
    device = generator.device if generator is not None else mu.device
    eps = torch.randn(shape, generator=generator, device=device, dtype=mu.dtype).to(mu.device)
    if samples is not None:
        mu, logvar = mu.unsqueeze(-2), logvar.unsqueeze(-2)
    return mu + torch.exp(0.5 * logvar) * eps


def labels_to_decoder_inputs(labels: torch.Tensor, pad_id: int, start_id: int) -> torch.Tensor:
    """Teacher forcing: [start, y_1, ..., y_{T-1}] with padding (-100 or pad) mapped to pad."""
    clean = labels.masked_fill(labels < 0, pad_id)
    return torch.cat([torch.full_like(clean[:, :1], start_id), clean[:, :-1]], dim=1)


def looks_like_repo_id(name: str) -> bool:
    """ "name" or "owner/name" (a Hub repository), not a path ("/abs", "./rel", "a/b/c")."""
    return not name.startswith((".", "/", "~")) and name.count("/") <= 1 and bool(name.strip())


# The model card pushed with a checkpoint (huggingface_hub's jinja template; hub.py fills `body`).
CARD_TEMPLATE = """---
{{ card_data }}
---

{{ body | default("A T5VAE: a pretrained T5 finetuned into a sentence VAE (t5vae package).", true) }}
"""


class T5VAE(
    nn.Module,
    ModelHubMixin,
    library_name="t5vae",
    model_card_template=CARD_TEMPLATE,
    paper_url="https://aclanthology.org/2021.insights-1.5",
    tags=["text-vae", "variational-autoencoder", "t5"],
    license="mit",
):
    """A T5 encoder-decoder with a Gaussian latent bottleneck between them.

    Sharing goes through huggingface_hub's ModelHubMixin (`push_to_hub`, `from_pretrained` of a
    repository id or a folder) with this package's own files (t5vae_config.json,
    model.safetensors): a PreTrainedModel subclass would need a PretrainedConfig, Auto-class
    registration and transformers' own weight and tying conventions around a model that wraps a
    T5 it did not build; the mixin only needs how to save and load, which is already here.
    """

    def __init__(self, t5: T5ForConditionalGeneration, config: T5VAEConfig):
        super().__init__()
        self._hub_mixin_config = (
            None  # (the mixin would write config.json: ours is t5vae_config.json)
        )
        self.config = config
        self.t5 = t5
        c = t5.config
        self.pad_id = c.pad_token_id if c.pad_token_id is not None else 0
        self.start_id = c.decoder_start_token_id if c.decoder_start_token_id is not None else 0
        self.n_dec_layers = c.num_decoder_layers
        self.n_heads, self.d_kv = c.num_heads, c.d_kv
        self.to_mu = nn.Linear(c.d_model, config.latent_dim)
        self.to_logvar = nn.Linear(c.d_model, config.latent_dim)
        if config.injection == "memory":
            # one key and one value vector (n_heads * d_kv each) per decoder layer (shared_kv: one
            # vector serving as both, as in the released code and Optimus)
            out = self.n_dec_layers * (1 if config.shared_kv else 2) * self.n_heads * self.d_kv
        else:
            out = c.d_model
        self.latent_to_memory = nn.Linear(config.latent_dim, out, bias=False)
        if config.untied_encoder_embeddings:
            self.untie_encoder_embeddings()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_base(
        cls,
        base: str | os.PathLike | T5Config | T5ForConditionalGeneration = "t5-small",
        latent_dim: int = T5VAEConfig.latent_dim,
        pooling: str = T5VAEConfig.pooling,
        injection: str = T5VAEConfig.injection,
        pretrained: bool = True,
        shared_kv: bool = T5VAEConfig.shared_kv,
        **options,
    ) -> T5VAE:
        """Wrap a T5 checkpoint (Hub name or local dir), a T5Config (random init) or a T5 model.

        `pretrained=False` with a name or directory reads only its config and initialises the
        weights randomly (offline tests with the t5-small config).
        """
        if isinstance(base, T5ForConditionalGeneration):
            t5, name = base, str(base.config.name_or_path or "t5")
        elif isinstance(base, T5Config):
            t5, name = T5ForConditionalGeneration(base), "random-init"
        else:
            name = str(base)
            if pretrained:
                t5 = T5ForConditionalGeneration.from_pretrained(name)
            else:
                t5 = T5ForConditionalGeneration(T5Config.from_pretrained(name))
                name = f"{name} (random init)"
        config = T5VAEConfig(
            latent_dim=latent_dim,
            pooling=pooling,
            injection=injection,
            shared_kv=shared_kv,
            **options,  # the released code's switches (released.py)
            base=name,
            t5_config=t5.config.to_dict(),
        )
        return cls(t5, config)

    def untie_encoder_embeddings(self) -> None:
        """Give the encoder its own copy of the input embeddings.

        T5 ties encoder input, decoder input and output embeddings (`shared`). Freezing the decoder
        and `lm_head` would then also freeze the encoder's embeddings; untying lets phase 1 train
        the encoder's embeddings while the decoder stays exactly as pretrained.
        """
        shared = self.t5.shared
        own = nn.Embedding(shared.num_embeddings, shared.embedding_dim)
        own.weight.data.copy_(shared.weight.data)
        self.t5.encoder.embed_tokens = own
        self.config.untied_encoder_embeddings = True

    # ------------------------------------------------------------------ saving, loading, the Hub
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        extra: dict | None = None,
        tokenizer=None,
        model_card_kwargs: dict | None = None,
        **_hub_kwargs,
    ) -> None:
        """Write config + weights (+ the tokenizer, + a model card README.md) atomically: a crash
        never leaves a half-written checkpoint.

        `extra` maps file names to objects saved with torch.save in the same atomic step (the
        training state that goes with these weights). `model_card_kwargs` fill the card template
        (hub.py builds them from a results file). push_to_hub (huggingface_hub's ModelHubMixin)
        saves through this method.
        """
        with atomic_dir(save_directory) as tmp:
            self._save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(str(tmp))
            if model_card_kwargs is not None:
                self.generate_model_card(**model_card_kwargs).save(tmp / "README.md")
            for name, obj in (extra or {}).items():
                torch.save(obj, tmp / name)

    def _save_pretrained(self, save_directory: Path) -> None:
        (Path(save_directory) / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2))
        save_model(self, str(Path(save_directory) / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> T5VAE:
        """A folder written by `save_pretrained`, or a Hub repository id (revision, token, cache_dir,
        local_files_only as in huggingface_hub). The mixin's own version would look for a
        config.json that this format does not use."""
        return cls._from_pretrained(model_id=str(pretrained_model_name_or_path), **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision=None, cache_dir=None, force_download=False,
                         local_files_only=False, token=None, **_model_kwargs) -> T5VAE:  # fmt: skip
        """A local folder written by `save_pretrained`, or a Hub repository (downloaded first);
        huggingface_hub's `from_pretrained` calls this. Eval mode, like Hugging Face models."""
        path = Path(model_id)
        if not path.is_dir() and looks_like_repo_id(model_id):  # the one network call
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(model_id, revision=revision, cache_dir=cache_dir,
                                          force_download=force_download, token=token,
                                          local_files_only=local_files_only))  # fmt: skip
        return cls._load_folder(path)

    @classmethod
    def _load_folder(cls, path: Path) -> T5VAE:
        cfg_file, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
        for f in (cfg_file, weights):
            if not f.is_file():
                raise FileNotFoundError(
                    f"{f} is missing: {path} is not a complete T5VAE checkpoint"
                )
        try:
            config = T5VAEConfig(**json.loads(cfg_file.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{cfg_file} is corrupted or not a T5VAE config: {e}") from e
        t5 = T5ForConditionalGeneration(T5Config.from_dict(config.t5_config))
        model = cls(t5, config)
        try:
            load_model(model, str(weights))
        except Exception as e:  # safetensors raises on truncated / malformed files
            raise ValueError(f"{weights} is corrupted or does not match {cfg_file}: {e}") from e
        return model.eval()

    # ------------------------------------------------------------------ encoder side
    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) = N(mu, diag(exp(logvar))) from masked pooling of the last encoder layer."""
        if self.config.pad_to and input_ids.shape[1] < self.config.pad_to:  # (released: 256)
            extra = self.config.pad_to - input_ids.shape[1]
            input_ids = F.pad(input_ids, (0, extra), value=self.pad_id)
            attention_mask = F.pad(attention_mask, (0, extra), value=0)
        hidden = self.t5.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        if self.config.released_pooling:
            pooled = released.unmasked_pool(hidden, self.config.pooling)
        else:
            pooled = masked_pool(hidden, attention_mask, self.config.pooling)
        return self.to_mu(pooled), self.to_logvar(pooled)

    # ------------------------------------------------------------------ decoder side
    def memory_cache(self, z: torch.Tensor) -> DynamicCache:
        """A fresh self-attention cache holding z's key/value slot for every decoder layer.

        latent_to_memory(z) is viewed per sentence as [layers, 2, heads, d_kv] (key, value; with
        shared_kv [layers, 1, ...], one vector for both): each row of the batch stays its own (the
        released code's reshape mixed sentences of a batch).
        """
        n_kv = 1 if self.config.shared_kv else 2
        projection = self.latent_to_memory(z)
        if self.config.released_memory_view:
            kv = released.mixed_memory_view(
                projection, self.n_dec_layers, n_kv, self.n_heads, self.d_kv
            )
        else:
            kv = projection.view(z.shape[0], self.n_dec_layers, n_kv, self.n_heads, self.d_kv)
        cache = DynamicCache()
        for layer in range(self.n_dec_layers):
            key = kv[:, layer, 0].unsqueeze(2)  # [B, heads, 1, d_kv]
            value = kv[:, layer, -1].unsqueeze(2)
            cache.update(key, value, layer)
        return cache

    def decoder_logits(
        self,
        z: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        cache: DynamicCache | None = None,
        return_cache: bool = False,
    ):
        """Logits of p(x_t | x_<t, z) for every position of `decoder_input_ids` [B, T].

        For step-by-step generation pass the cache returned by a previous call (return_cache=True).
        """
        if self.config.injection == "memory":
            if cache is None:
                cache = self.memory_cache(z)
            out = self.t5.decoder(input_ids=decoder_input_ids, cache=cache, use_cache=True)
        else:
            states = self.latent_to_memory(z).unsqueeze(1)  # [B, 1, d_model]
            out = self.t5.decoder(
                input_ids=decoder_input_ids,
                encoder_hidden_states=states,
                cache=cache,
                use_cache=return_cache,
            )
        hidden = out.last_hidden_state
        if getattr(self.t5.config, "scale_decoder_outputs", self.t5.config.tie_word_embeddings):
            hidden = hidden * (self.t5.config.d_model**-0.5)
        logits = self.t5.lm_head(hidden)
        return (logits, out.cache) if return_cache else logits

    def token_log_likelihood(
        self, z: torch.Tensor, labels: torch.Tensor, decoder_input_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x_t | x_<t, z) per target token [B, T]; 0 at padding (label -100 or pad id).

        `decoder_input_ids` replaces the teacher-forcing inputs [start, x_1, ..., x_{T-1}]
        (word dropout feeds a corrupted copy; the targets stay `labels`).
        """
        labels = labels.masked_fill(labels == self.pad_id, -100)
        if decoder_input_ids is None:
            decoder_input_ids = labels_to_decoder_inputs(labels, self.pad_id, self.start_id)
        logits = self.decoder_logits(z, decoder_input_ids)
        nll = F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none"
        )
        return -nll.view(labels.shape)

    def log_likelihood(
        self, z: torch.Tensor, labels: torch.Tensor, decoder_input_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x | z) = sum_t log p(x_t | x_<t, z) per sentence [B], in nats (EOS included)."""
        return self.token_log_likelihood(z, labels, decoder_input_ids).sum(-1)

    # ------------------------------------------------------------------ full pass
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        sample: bool = True,
        generator: torch.Generator | None = None,
        decoder_input_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One VAE pass: rec = -log p(x|z) per sentence with z ~ q(z|x) (z = mu if not sample)."""
        mu, logvar = self.encode(input_ids, attention_mask)
        z = reparameterize(mu, logvar, generator) if sample else mu
        token_nll = -self.token_log_likelihood(z, labels, decoder_input_ids)
        return {
            "rec": token_nll.sum(-1),
            "token_nll": token_nll,
            "mu": mu,
            "logvar": logvar,
            "z": z,
        }
