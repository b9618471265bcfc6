"""Rule build_demo_model: a tiny random GPT-NeoX and its tokenizer (offline demo)."""

from reachability.demo_model import build_demo_model
from reachability.pipeline import start_log

log = start_log(snakemake.log[0])
spec = dict(snakemake.params.spec)
corpus = snakemake.input.corpus
spec.pop("corpus")
build_demo_model(snakemake.output.model, corpus, **spec)
log.info("built %s from %s with %s", snakemake.output.model, corpus, spec)
