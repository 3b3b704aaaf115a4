"""Writes sentences.csv: 200 short labelled sentences on four topics, from fixed templates and
word lists with a fixed seed (run once; the CSV is what the recipe pins, not this script).

    python make_data.py > sentences.csv
"""

import csv
import random
import sys

TOPICS = {
    "sport": (["the {team} won the {game} last night", "our {team} lost the {game} at home",
               "a late goal decided the {game}", "the coach praised the {team} after the {game}",
               "fans cheered as the {team} scored again"],
              {"team": ["team", "club", "squad", "side", "players"],
               "game": ["match", "final", "derby", "cup game", "league game"]}),
    "food": (["she cooked {dish} with fresh {item}", "this {dish} needs more {item}",
              "we ate {dish} at the new restaurant", "add {item} to the {dish} and stir",
              "the {dish} tasted of {item} and garlic"],
             {"dish": ["soup", "pasta", "curry", "salad", "bread"],
              "item": ["tomatoes", "basil", "cheese", "onions", "pepper"]}),
    "weather": (["heavy {sky} is expected {when}", "the forecast says {sky} {when}",
                 "it was cold with {sky} {when}", "strong winds and {sky} arrive {when}",
                 "expect {sky} over the hills {when}"],
                {"sky": ["rain", "snow", "storms", "fog", "sunshine"],
                 "when": ["tomorrow", "tonight", "this weekend", "on monday", "all week"]}),
    "tech": (["the new {device} runs the latest {soft}", "update the {soft} on your {device}",
              "my {device} crashed after the {soft} update", "the {device} ships with better {soft}",
              "engineers fixed a bug in the {device} {soft}"],
             {"device": ["phone", "laptop", "tablet", "server", "router"],
              "soft": ["software", "firmware", "browser", "kernel", "app"]}),
}


def rows(per_topic: int = 50, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for label, (templates, words) in TOPICS.items():
        for _ in range(per_topic):
            t = rng.choice(templates)
            out.append((t.format(**{k: rng.choice(v) for k, v in words.items()}), label))
    rng.shuffle(out)
    return out


if __name__ == "__main__":
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["text", "label"])
    w.writerows(rows())
