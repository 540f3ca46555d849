"""A built-in English corpus with known generating factors (offline default, tests).

Each sentence is drawn from a small grammar by four independent factors, stored beside it:
topic (food, sport, weather, music), sentiment (positive, negative), tense (past, present,
future) and length (short, long). Because the factors are known, a linear probe on the posterior
mean tells how much of each one the latent code captures: collapse (nothing) is told apart from
success (most factors) better than by KL alone. Generation is deterministic given the seed.
"""

from __future__ import annotations

import random

FACTORS = {
    "topic": ("food", "sport", "weather", "music"),
    "sentiment": ("positive", "negative"),
    "tense": ("past", "present", "future"),
    "length": ("short", "long"),
}
SPLIT_SIZES = {"train": 10000, "valid": 1000, "test": 1000}
SPLIT_SEEDS = {"train": 11, "valid": 22, "test": 33}

_SUBJECTS = {
    "food": ["the chef", "my aunt", "the baker", "our neighbour", "the cook"],
    "sport": ["the team", "the striker", "my brother", "the coach", "the runner"],
    "weather": ["the morning", "the weekend", "the sky", "the afternoon", "the night"],
    "music": ["the band", "the singer", "my sister", "the choir", "the pianist"],
}
# verb in (past, present, future) form, object phrases
_VERBS = {
    "food": [
        ("cooked", "cooks", "will cook"),
        ("baked", "bakes", "will bake"),
        ("served", "serves", "will serve"),
    ],
    "sport": [
        ("played", "plays", "will play"),
        ("won", "wins", "will win"),
        ("trained for", "trains for", "will train for"),
    ],
    "weather": [
        ("brought", "brings", "will bring"),
        ("turned into", "turns into", "will turn into"),
        ("started with", "starts with", "will start with"),
    ],
    "music": [
        ("performed", "performs", "will perform"),
        ("recorded", "records", "will record"),
        ("rehearsed", "rehearses", "will rehearse"),
    ],
}
_OBJECTS = {
    "food": ["a soup", "the bread", "a pie", "the pasta", "a curry"],
    "sport": ["the match", "the final", "the race", "the game", "the cup"],
    "weather": ["some rain", "a storm", "the sunshine", "a cold wind", "the fog"],
    "music": ["a song", "the concert", "an album", "the anthem", "a ballad"],
}
_ADJECTIVES = {
    "positive": ["wonderful", "great", "lovely", "excellent", "delightful"],
    "negative": ["terrible", "awful", "boring", "dreadful", "disappointing"],
}
_BE = ("was", "is", "will be")
_CLAUSES = {
    "positive": ["and everyone was happy", "and we enjoyed every minute", "so we all smiled"],
    "negative": ["and everyone was upset", "and we regretted every minute", "so we all complained"],
}
_CLAUSE_TENSE = {"was": ("was", "is", "will be"), "enjoyed": ("enjoyed", "enjoy", "will enjoy"),
                 "smiled": ("smiled", "smile", "will smile"), "regretted": ("regretted", "regret", "will regret"),
                 "complained": ("complained", "complain", "will complain")}  # fmt: skip
_TIMES = ("yesterday", "today", "tomorrow")


def _clause(text: str, t: int) -> str:
    return " ".join(_CLAUSE_TENSE[w][t] if w in _CLAUSE_TENSE else w for w in text.split())


def generate(n: int, seed: int) -> tuple[list[str], list[dict]]:
    """n sentences and their factors, deterministic in `seed`."""
    rng = random.Random(seed)
    sentences, factors = [], []
    for _ in range(n):
        f = {k: rng.choice(v) for k, v in FACTORS.items()}
        t = FACTORS["tense"].index(f["tense"])
        topic, sentiment = f["topic"], f["sentiment"]
        words = [
            rng.choice(_SUBJECTS[topic]),
            rng.choice(_VERBS[topic])[t],
            rng.choice(_OBJECTS[topic]),
            _TIMES[t],
            "and it",
            _BE[t],
            rng.choice(_ADJECTIVES[sentiment]),
        ]
        if f["length"] == "long":
            words += [",", _clause(rng.choice(_CLAUSES[sentiment]), t)]
        sentences.append(" ".join(words) + " .")
        factors.append(f)
    return sentences, factors
