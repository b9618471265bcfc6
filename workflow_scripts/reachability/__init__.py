"""Soft-prompt reachability of residual-stream targets.

Modules, one idea each:
  job           what every rule script needs first: its log, versions, the digest of the code it runs
  experiments   the registry: one record per experiment (its settings, conditions, builder, lines), read by every stage
  study         what a config means: sites, conditions, run numbering (from the registry)
  validation    the checks a config must pass beyond its schema, each naming its key
  probes        what the machine can provide: the hub, the local dataset files
  budget        the step budget Exp 1 decides (the agenda's 2000-or-5000 rule)
  models        load a causal LM (float32, frozen, safetensors) and find its parts
  sites         which residual tensor a target is defined at (torch-free)
  forward       forwards that stop at a site, or continue from one (only the blocks needed)
  ablation      zero the FFN or attention output of chosen blocks
  runs          run identities, stable seeds, packs and batches
  methods       how runs move: one registered class each (soft, PEZ, the norm ball, a token mixture, GCG, the
                exact inversion), an axis of any experiment
  optimize      the engine: batches of runs, loss history, final evaluation, OOM halving
  capture       the step replayed from a CUDA graph, and how each batch ran
  precision     fp32, tf32, bf16 and exact float32 where it matters
  targets       targets built from real residuals (real, matched, isotropic, mixed, replaced)
  data          token pool extraction from any `datasets` source
  records       where a study's files live, what each records, what its readers expect
  storage       atomic writes of every output; reads that name a wrong or broken file
  results       run packs -> [condition, target, restart] arrays -> metrics.json
  metrics       best of restarts, reached fraction, restart spread, plateau verdict
  findings      the statistics of the verdicts: intervals, tests, Holm, the Exp 4 fits
  guide         the agenda's interpretation guide, line by line, from the metrics
  plots         the agenda's figures
  gpu_pool      the late, blocking device claim; one GPU per job
  demo_model    the offline demo's tiny GPT-NeoX and tokenizer
  solutions     what optimised prompts are: nearest tokens, what those reach, their KL
  functional    continuing the forward pass from a site; KL of next-token distributions
  manifold      nearest token embeddings of soft prompts
  perturbation  KL against residual perturbations of size ε·RMS
  placement     reachability errors on the perturbation curve, per position
  hard_prompt   hard prompts against soft ones: recovery of the target's tokens, the table
  comparison    the study across models: each compared model's config, the table across them
  objectives    what a run minimises (optimizer.loss): the agenda's MSE or the research log's cosine + MSE
  trajectories  the cosine to a target at every layer; the best, median and worst targets (not yet in the DAG)
  inversion     the exact inversion (methods.Inversion) run on any targets, outside a study
  ladder        the constraint ladder: every method on the same targets, from the free prompt to text
"""

__version__ = "0.1.0"
