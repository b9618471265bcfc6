"""Rule ladder: every method on the same targets, from the free soft prompt to text (ladder.md,
ladder.json), with exact recovery of real text where the targets are made by it."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability import experiments, ladder
from reachability.records import expected
from reachability.results import OPTIONAL
from reachability.storage import read_h5, write_json, writing
from reachability.study import ladder_experiments, ladder_joins, real_text

cfg, steps = snakemake.config, snakemake.params.steps
names = ladder_experiments(cfg)
runs, conditions = {}, {}
for name, path in zip(names, snakemake.input.runs, strict=True):
    runs[name], attrs = read_h5(path, ["final_mse", "cosine", "target_mean_square"], expect=expected(cfg, path, steps),
                                optional=tuple(OPTIONAL))
    conditions[name] = list(attrs["conditions"])
joins = ladder_joins(cfg)
labels, texts = {}, set()
for name in names:
    for base in dict.fromkeys(c.partition("/")[0] for c in conditions[name]):
        key = joins.get(name, (name, base))
        labels.setdefault(key, experiments.get(key[0]).label_of(key[1]))
        if real_text(cfg, name):
            texts.add(key)
original = read_h5(snakemake.input.pool, ["tokens"], expect=expected(cfg, snakemake.input.pool))[0]["tokens"]
threshold = cfg["metrics"]["reached_threshold"]
found = ladder.ladder(runs, conditions, joins, labels, texts, original, threshold)
write_json(snakemake.output.json, {"reached_threshold": threshold, "sections": found},
           expected(cfg, snakemake.output.json, steps))
with writing(snakemake.output.table) as f:
    f.write(ladder.markdown(found, threshold))
for section in found:
    for rung in section["rungs"]:
        m = rung["summary"]
        log.info("%s, %s: median relative MSE %s, reached %.0f%%%s", section["label"], rung["label"],
                 m["median_relative_best_mse"], 100 * m["reached_share"],
                 f", recovered {100 * m['exact_share']:.0f}%" if "exact_share" in m else "")
