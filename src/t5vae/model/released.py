"""The released code's defects (seongminp/transformers-into-vaes), as switches that are off by default.

Each switch reproduces one defect exactly, so that its effect on the numbers can be measured (the
`released` study, README "What the released code would have reported"); none is ever on in a
profile that claims results. A profile turns them on in its `released:` section (or
`--set released.<switch>=true`); tests/unit/test_released.py shows each defect's signature when on and
its absence when off.

switch                  the released code                                        here
memory_view             z's projection [B, L*H*d] reshaped to [L, B, H, 1, d]:  a per-sentence view
                        a sentence's memory holds other sentences' numbers
pooling_over_padding    mean / max over every position, padding included         over real tokens
deletion_swap           token deletion returns the mask as input ids and the     ids and mask kept
                        ids as the mask: in training the encoder sees 0s and 1s
                        (its sentence's length), whenever denoising is on
pad_to_256              every batch padded to 256 tokens                          to its longest
rec_per_token           reconstruction averaged over all B x T positions         summed per sentence,
                        (padding included) next to a KL summed per sentence      like the KL
kl_ramp                 KL weight (step mod C) / C, C = 100 epochs of steps:     linear warm-up to 1
                        below 0.1 in a 10-epoch run
tied_embeddings_frozen  freezing lm_head freezes T5's tied input embeddings, so  the encoder's own
                        phase 1 never trains the encoder's embeddings            copy trains (untied)
The memory's key and value being one vector (model.shared_kv) is the released design, not a
defect, and has its own switch. The released metrics (one-sample -ELBO as "NLL", the ELBO's sign,
per-subword PPL from the bound, MI averaged over batches) are reported next to the corrected ones
for every run (tables.released_table).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SWITCHES = ("memory_view", "pooling_over_padding", "deletion_swap", "pad_to_256", "rec_per_token",
            "kl_ramp", "tied_embeddings_frozen")  # fmt: skip
RELEASED_PAD_LENGTH = 256
MI_BATCH = 256  # the released MI: per batch of this many sentences, averaged


@dataclass
class ReleasedSwitches:
    """A profile's `released:` section: which of the released code's defects to reproduce."""

    memory_view: bool = False
    pooling_over_padding: bool = False
    deletion_swap: bool = False
    pad_to_256: bool = False
    rec_per_token: bool = False
    kl_ramp: bool = False
    tied_embeddings_frozen: bool = False

    def any(self) -> bool:
        return any(getattr(self, s) for s in SWITCHES)


def mixed_memory_view(
    projection: torch.Tensor, layers: int, kv: int, heads: int, d_kv: int
) -> torch.Tensor:
    """The released reshape: [B, L*kv*H*d] read as [L, kv, B, H, d] without moving the batch axis
    first, then returned as [B, L, kv, H, d] like the correct view (rows mix across the batch)."""
    batch = projection.shape[0]
    return projection.reshape(layers, kv, batch, heads, d_kv).permute(2, 0, 1, 3, 4)


def unmasked_pool(hidden: torch.Tensor, pooling: str) -> torch.Tensor:
    """The released pooling: over every position of [B, T, H], padding included."""
    return hidden.mean(1) if pooling == "mean" else hidden.max(1).values


def swap_ids_and_mask(
    input_ids: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The released denoising's return order: the mask goes in as input ids, the ids as the mask."""
    return mask.to(input_ids.dtype), input_ids.to(mask.dtype)


def rec_per_padded_token(token_nll: torch.Tensor) -> torch.Tensor:
    """The released reconstruction term: mean of -log p(x_t|...) over all B x T positions
    (0 at padding), scaled back to a per-sentence tensor [B] whose mean is that number."""
    return token_nll.mean(-1)
