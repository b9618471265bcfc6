"""Which residual tensor a target is (torch-free, so CPU rules import it cheaply).

Two sites (docs/design.md §5):
  hidden_states L   what Hugging Face returns as `hidden_states[L]`: the input embedding for
                    L = 0, the raw residual after L blocks for 0 < L < n_layers, and for
                    L = n_layers the output of the *final norm* (the agenda's "layer 12").
  block_output L    the raw residual stream after block L (1-based), never normed.
They differ only at L = n_layers. `forward.residual_function` computes the tensor.

TransformerLens names are accepted as aliases (blocks are 0-based there):
  blocks.{l}.hook_resid_pre    = hidden_states[l]         the residual entering block l
                                                          (l = 0: the input embedding)
  blocks.{l}.hook_resid_post   = block_output[l + 1]      the residual leaving block l
  ln_final.hook_normalized     = hidden_states[n_layers]  after the final LayerNorm, gain and
                                                          bias included: TransformerLens with
                                                          fold_ln=False (its default folding
                                                          hooks the vector before gain and bias)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SITE_KINDS = ("hidden_states", "block_output")


class SiteError(ValueError):
    """A site the model does not have."""


@dataclass(frozen=True)
class Site:
    kind: str
    layer: int

    def __str__(self) -> str:
        return f"{self.kind}[{self.layer}]"

    @property
    def tag(self) -> str:
        """Short file-name-safe form: hs12, block12."""
        return f"{'hs' if self.kind == 'hidden_states' else 'block'}{self.layer}"

    @staticmethod
    def from_tag(tag: str) -> Site:
        kind = "hidden_states" if tag.startswith("hs") else "block_output"
        return Site(kind, int(tag.removeprefix("hs").removeprefix("block")))

    def ends_with_final_norm(self, n_layers: int) -> bool:
        return self.kind == "hidden_states" and self.layer == n_layers


def check_site(site: Site, n_layers: int) -> None:
    """Raise SiteError unless the model with `n_layers` blocks has `site`."""
    if site.kind not in SITE_KINDS:
        raise SiteError(f"site.kind {site.kind!r} is not one of {SITE_KINDS}")
    low = 0 if site.kind == "hidden_states" else 1
    if not low <= site.layer <= n_layers:
        raise SiteError(
            f"site.layer {site.layer} is out of range for {site.kind} of a model with "
            f"{n_layers} blocks: choose {low}..{n_layers}"
        )


ALIASES = ("blocks.{l}.hook_resid_pre", "blocks.{l}.hook_resid_post", "ln_final.hook_normalized")


def site_entry(name: str) -> dict:
    """A TransformerLens hook name as a config site entry {kind, layer} (layer 'last' for the
    final norm: the model says which layer that is)."""
    if match := re.fullmatch(r"blocks\.(\d+)\.hook_resid_(pre|post)", name):
        block = int(match.group(1))
        return {"kind": "hidden_states", "layer": block} if match.group(2) == "pre" else \
            {"kind": "block_output", "layer": block + 1}
    if name == "ln_final.hook_normalized":
        return {"kind": "hidden_states", "layer": "last"}
    raise SiteError(f"{name!r} is not a site name this tool knows: use {{kind, layer}} or one of {ALIASES}")
