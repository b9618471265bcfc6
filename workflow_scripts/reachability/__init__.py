"""Soft-prompt reachability of residual-stream targets.

Modules, one idea each:
  models        load a causal LM (float32, frozen, safetensors) and find its parts
  sites         which residual tensor a target is defined at, and the truncated forward to it
  ablation      zero the FFN or attention output of chosen blocks
  runs          run identities, stable seeds and the shard plan
  optimize      batched soft-prompt optimisation (many independent Adam runs at once)
  metrics       best of restarts, reached fraction, plateau check
  targets       experiment targets built from real residuals (Exp 2a, 2b, 3, 4)
  data          token pool extraction from any `datasets` source
  storage       HDF5 files that carry their provenance
  config        checks of a study config beyond its JSON schema
  plots         the agenda's figures
"""

__version__ = "0.1.0"
