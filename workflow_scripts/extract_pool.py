"""Rule extract_pool: the first pool_size usable real sequences, as the agenda takes them."""

from reachability.data import extract_sequences, load_texts
from reachability.models import load_tokenizer
from reachability.pipeline import provenance, start_log
from reachability.storage import write_h5

log = start_log(snakemake.log[0])
cfg, ds = snakemake.config, snakemake.params.dataset
tokenizer = load_tokenizer(snakemake.params.model["name"], snakemake.params.model["revision"])
texts = load_texts(ds["path"], ds["name"], ds["split"], snakemake.params.data_files, ds["text_field"])
tokens, sources = extract_sequences(texts, tokenizer, cfg["seq_len"], cfg["pool_size"], ds["min_chars"])
write_h5(snakemake.output.pool, {"tokens": tokens, "text_index": sources},
         {**provenance(cfg), "dataset_spec": ds})
log.info("pool of %d sequences x %d tokens from %s", *tokens.shape, ds["path"])
