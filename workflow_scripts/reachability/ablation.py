"""Zero the FFN or the attention output of chosen blocks (the log's Exp 4 ablations).

A forward hook replaces the submodule's output by zeros, so the residual update of that
block loses exactly that term: for GPT-NeoX's parallel residual, x + attn(ln1 x) + mlp(ln2 x)
becomes x + attn(ln1 x) without the FFN. The hooks are removed on leaving the context, also
when the body raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from .models import LanguageModel

COMPONENTS = ("ffn", "attention")


def _zero_output(module, args, output):
    if isinstance(output, tuple):
        return (torch.zeros_like(output[0]), *output[1:])
    return torch.zeros_like(output)


@contextmanager
def ablated(
    lm: LanguageModel, component: str | None, blocks: Sequence[int] | None = None
) -> Iterator[None]:
    """Within the context, `component` ('ffn' or 'attention'; None = nothing) outputs zeros
    in `blocks` (0-based; None = all blocks)."""
    if component is None:
        yield
        return
    if component not in COMPONENTS:
        raise ValueError(f"ablation {component!r} is not one of {COMPONENTS}")
    indices = range(lm.n_layers) if blocks is None else blocks
    name = lm.arch.ffn if component == "ffn" else lm.arch.attention
    handles = [
        getattr(lm.blocks[i], name).register_forward_hook(_zero_output) for i in indices
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
