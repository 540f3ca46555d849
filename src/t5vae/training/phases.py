"""The two phases: what each one trains (`set_trainable`; their settings: training/config.py).

phase1  encoder + latent heads learn to autoencode (KL weight 0); with freeze_decoder the decoder,
        lm_head and the latent-to-memory projection stay as they are.
phase2  everything trains on the run's objective (objectives.py).
"""

from __future__ import annotations

from t5vae.model.vae import T5VAE
from t5vae.training.config import PHASES, TrainConfig

__all__ = ["PHASES", "set_trainable"]


def set_trainable(model: T5VAE, cfg: TrainConfig) -> None:
    """Choose what trains: everything, except in phase 1 with freeze_decoder.

    Phase 1 with freeze_decoder freezes the decoder, `lm_head` and, with memory_projection
    "frozen" (the released code), the latent-to-memory projection.
    T5 ties the encoder's input embeddings to the decoder's (and to lm_head), so the policy is
    explicit (`phase1_embeddings`):
      frozen     the shared embeddings stay frozen: the encoder's input embeddings do not train
                 (what the released code did, silently);
      untied     the encoder gets its own trainable copy; the decoder stays exactly pretrained;
      trainable  the shared matrix trains: the encoder learns, and so do the decoder's input
                 embeddings and lm_head (the decoder is then not strictly frozen).
    """
    for name, p in model.named_parameters():
        # with memory injection the decoder's cross-attention sub-layers never run: keep them out
        # of the optimiser (and of DDP's gradient reduction)
        cross_attention = name.startswith("t5.decoder.block.") and ".layer.1." in name
        p.requires_grad_(not (cross_attention and model.config.injection == "memory"))
    if cfg.phase != "phase1" or not cfg.freeze_decoder:
        return
    if cfg.phase1_embeddings == "untied" and not model.config.untied_encoder_embeddings:
        model.untie_encoder_embeddings()
    frozen = [model.t5.decoder, model.t5.lm_head]
    if cfg.memory_projection == "frozen":
        frozen.append(model.latent_to_memory)
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    if cfg.phase1_embeddings == "trainable":
        model.t5.shared.weight.requires_grad_(True)
    elif cfg.phase1_embeddings == "frozen":
        model.t5.shared.weight.requires_grad_(False)
