"""Which residual tensor a target is (torch-free, so CPU rules import it cheaply).

Two sites (design notes §4):
  hidden_states L   what Hugging Face returns as `hidden_states[L]`: the input embedding for
                    L = 0, the raw residual after L blocks for 0 < L < n_layers, and for
                    L = n_layers the output of the *final norm* (the agenda's "layer 12").
  block_output L    the raw residual stream after block L (1-based), never normed.
They differ only at L = n_layers. `forward.residual_function` computes the tensor.
"""

from __future__ import annotations

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
