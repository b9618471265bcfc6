"""Soft-prompt reachability of residual-stream targets.

Modules, one idea each:
  models        load a causal LM (float32, frozen, safetensors) and find its parts
  sites         which residual tensor a target is defined at (torch-free)
  forward       forwards that stop at a site, or continue from one (only the blocks needed)
  ablation      zero the FFN or attention output of chosen blocks
  runs          run identities, stable seeds, packs and batches
  optimize      initial prompts and batched optimisation (many independent Adam runs at once)
  metrics       best of restarts, reached fraction, plateau verdict
  targets       experiment targets built from real residuals (Exp 2a, 2b, 3, 4)
  data          token pool extraction from any `datasets` source
  storage       HDF5 files that carry their provenance; targets and JSON
  config        checks of a study config beyond its JSON schema
  plots         the agenda's figures
  results       run packs -> [condition, target, restart] arrays -> metrics.json
  pipeline      what rule scripts share: logs, provenance, versions, code digests
  gpu_pool      the late, blocking device claim; one GPU per job
  demo_model    the offline demo's tiny GPT-NeoX and tokenizer
  functional    continuing the forward pass from a site; KL of next-token distributions
  manifold      nearest token embeddings of soft prompts
  perturbation  KL against residual perturbations of size ε·RMS
  placement     reachability errors on the perturbation curve, per position
  findings      the agenda's interpretation guide, with statistics
  hard_prompt   hard prompts (PEZ) against soft ones: recovery of the target's tokens, the table
  comparison    the study across models: each compared model's config, the table across them
"""

__version__ = "0.1.0"
