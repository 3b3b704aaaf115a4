"""Writes reviews.csv and reviews-holdout.csv: short product reviews labelled with the product
kind they are about (book, film, kitchen, garden), from fixed templates and word lists with a
fixed seed. The CSVs are what `assay adapt` reads and pins; this script only documents them.

    python make_data.py          # writes both files beside this script
"""

import csv
import os
import random

KINDS = {
    "book": (["the {thing} of this novel kept me {feel}", "I read the whole {thing} in one night",
              "the author's {thing} felt {adj}", "a {adj} story with a clever {thing}",
              "the last chapter ruined the {thing}", "this paperback has a {adj} {thing}"],
             {"thing": ["plot", "ending", "prose", "characters", "narrator", "twist"],
              "feel": ["awake", "reading", "guessing", "hooked"],
              "adj": ["gripping", "slow", "moving", "predictable", "beautiful", "dull"]}),
    "film": (["the {thing} in this movie was {adj}",
              "we watched it at the cinema and the {thing} was {adj}",
              "the director got a {adj} {thing} from the cast", "two hours of {adj} {thing}",
              "the sequel has a better {thing}", "the actors made the {thing} {adj}"],
             {"thing": ["soundtrack", "acting", "camera work", "script", "special effects",
                        "casting"],
              "feel": ["watching"],
              "adj": ["stunning", "boring", "brilliant", "awful", "funny", "tense"]}),
    "kitchen": (["this {thing} heats up {adv} and cleans easily",
                 "the {thing} broke after a week in the kitchen",
                 "my {thing} makes {food} in minutes", "a {adj} {thing} for cooking {food}",
                 "the {thing} is {adj} and fits on the counter",
                 "I use the {thing} every morning for {food}"],
                {"thing": ["blender", "kettle", "frying pan", "toaster", "rice cooker", "knife set"],
                 "adv": ["quickly", "evenly", "slowly"],
                 "food": ["soup", "toast", "rice", "smoothies", "eggs"],
                 "adj": ["sturdy", "cheap", "noisy", "handy", "heavy", "compact"]}),
    "garden": (["the {thing} survived the winter in my garden", "this {thing} made weeding {adj}",
                "we planted {plant} with the new {thing}", "the {thing} is {adj} for a small lawn",
                "my {plant} grew well after using the {thing}", "the {thing} rusted after the rain"],
               {"thing": ["hose", "rake", "lawn mower", "watering can", "shovel", "hedge trimmer"],
                "plant": ["roses", "tomatoes", "tulips", "herbs", "beans"],
                "adj": ["easy", "hard work", "great", "useless", "quick", "pleasant"]}),
}


# Templates every kind shares: only the product noun tells the kinds apart. Confusers name
# another kind's words ("a cookbook" is a book about the kitchen).
SHARED = ["I bought the {thing} as a gift and my sister loved it",
          "honestly the {thing} was not worth the money",
          "the {thing} arrived late but it was {adj}", "would not recommend this {thing} to a friend",
          "five stars for the {thing}, it is {adj}"]
CONFUSERS = {"book": ["cookbook full of soup recipes", "guide to growing roses",
                      "novel that became a movie"],
             "film": ["documentary about chefs", "movie based on a famous book", "film about a garden"],
             "kitchen": ["recipe book stand", "popcorn maker for movie nights",
                         "herb pot for the windowsill"],
             "garden": ["outdoor pizza oven", "garden bench for reading", "bird feeder"]}
NOISE = 0.06      # share of labels replaced by another kind's: real data is never clean


def rows(per_kind: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for label, (templates, words) in KINDS.items():
        for _ in range(per_kind):
            r = rng.random()
            if r < 0.3:
                text = rng.choice(SHARED).format(thing=rng.choice(words["thing"]),
                                                 adj=rng.choice(words["adj"]))
            elif r < 0.4:
                text = rng.choice(SHARED).format(thing=rng.choice(CONFUSERS[label]), adj="fine")
            else:
                text = rng.choice(templates).format(**{k: rng.choice(v) for k, v in words.items()})
            if rng.random() < NOISE:
                label_out = rng.choice(sorted(k for k in KINDS if k != label))
            else:
                label_out = label
            out.append((text, label_out))
    rng.shuffle(out)
    return out


def write(path: str, data: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(data)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    write(os.path.join(here, "reviews.csv"), rows(75, seed=11))
    write(os.path.join(here, "reviews-holdout.csv"), rows(20, seed=12))
