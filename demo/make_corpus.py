"""Write demo/corpus.txt: a small, seeded, pseudo-English corpus for the offline demo.

Run once (`python demo/make_corpus.py`); the output is committed so the demo needs nothing
but the repository. One paragraph a line, like WikiText, with short and empty lines between
so the extraction rules (strip, >= 20 characters, >= seq_len tokens) have work to do.
"""

import random
from pathlib import Path

SUBJECTS = ["the river", "a small village", "the old station", "the committee", "her brother",
            "the northern army", "a local newspaper", "the second album", "the museum", "the bridge",
            "the young captain", "a wooden ship", "the city council", "the first season", "the garden"]
VERBS = ["was built", "was described", "was moved", "was restored", "was praised", "was renamed",
         "was closed", "was expanded", "was recorded", "was opened", "was destroyed", "was sold"]
PLACES = ["near the coast", "in the valley", "after the war", "during the winter", "by the harbour",
          "in the early years", "at the end of the century", "under a new owner", "along the railway",
          "beside the cathedral", "on the eastern shore", "within the old walls"]
CLAUSES = ["and it remained popular for decades", "although few records survive",
           "which led to a long dispute", "while the town continued to grow",
           "because the funding had run out", "and critics called it a turning point",
           "so the plans were changed again", "before the storm of that year"]
TITLES = ["History", "Reception", "Design", "Early life", "Legacy", "Construction", "Track listing"]


def sentence(rng: random.Random) -> str:
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}"
    if rng.random() < 0.7:
        s += f" , {rng.choice(CLAUSES)}"
    if rng.random() < 0.4:
        s += f" in {rng.randint(1780, 2015)}"
    return s[0].upper() + s[1:] + " ."


def main(lines: int = 900, seed: int = 0) -> None:
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        kind = rng.random()
        if kind < 0.15:
            out.append("")
        elif kind < 0.25:
            out.append(f" = = {rng.choice(TITLES)} = = ")
        else:
            out.append(" " + " ".join(sentence(rng) for _ in range(rng.randint(1, 4))) + " ")
    Path(__file__).with_name("corpus.txt").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
