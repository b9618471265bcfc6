"""Rule extract_pool: the first pool_size usable real sequences, as the agenda takes them."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability.data import extract_sequences, load_texts
from reachability.models import load_tokenizer
from reachability.storage import write_h5
from reachability.records import pool_record

cfg, ds = snakemake.config, snakemake.params.dataset
tokenizer = load_tokenizer(snakemake.params.model["name"], snakemake.params.model["revision"])
files = [*snakemake.input.data, *snakemake.params.remote_data_files] or None  # local ones are inputs
texts = load_texts(ds["path"], ds["name"], ds["split"], files, ds["text_field"])
tokens, sources = extract_sequences(texts, tokenizer, cfg["seq_len"], cfg["pool_size"], ds["min_chars"])
write_h5(snakemake.output.pool, {"tokens": tokens, "text_index": sources},
         {**pool_record(cfg), "dataset_spec": ds})
log.info("pool of %d sequences x %d tokens from %s", *tokens.shape, ds["path"])
