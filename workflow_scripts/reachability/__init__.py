"""Soft-prompt reachability of residual-stream targets.

Modules, one idea each:
  models        load a causal LM (float32, frozen, safetensors) and find its parts
  sites         which residual tensor a target is defined at (torch-free)
  forward       the truncated forward to a site (only the blocks it needs, no LM head)
  ablation      zero the FFN or attention output of chosen blocks
  runs          run identities, stable seeds and the shard plan
  optimize      initial prompts and batched optimisation (many independent Adam runs at once)
  metrics       best of restarts, reached fraction, plateau check
  targets       experiment targets built from real residuals (Exp 2a, 2b, 3, 4)
  data          token pool extraction from any `datasets` source
  storage       HDF5 files that carry their provenance
  config        checks of a study config beyond its JSON schema
  plots         the agenda's figures
  results       shards -> [condition, target, restart] arrays -> metrics.json
  pipeline      what rule scripts share: logs, provenance, versions
  gpu_pool      one GPU per job on a multi-GPU machine
  demo_model    the offline demo's tiny GPT-NeoX and tokenizer
  functional    continuing the forward pass from a site; KL of next-token distributions
  manifold      nearest token embeddings of soft prompts
  perturbation  KL against residual perturbations of size ε·RMS
"""

__version__ = "0.1.0"
