"""Rule build_demo_model: a tiny random GPT-NeoX and its tokenizer (offline demo)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability.demo_model import build_demo_model

spec = dict(snakemake.params.spec)
corpus = snakemake.input.corpus
spec.pop("corpus")
build_demo_model(snakemake.output.model, corpus, **spec)
log.info("built %s from %s with %s", snakemake.output.model, corpus, spec)
