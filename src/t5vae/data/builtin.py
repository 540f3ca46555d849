"""A built-in English corpus with known generating factors (offline default, tests).

Each sentence is drawn from a small grammar by four independent factors, stored beside it:
topic (food, sport, weather, music), sentiment (positive, negative), tense (past, present,
future) and length (short, long). Because the factors are known, a linear probe on the posterior
mean tells how much of each one the latent code captures: collapse (nothing) is told apart from
success (most factors) better than by KL alone. Generation is deterministic given the seed.
"""

from __future__ import annotations

import random
import re

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


def _alternatives(phrases) -> str:
    return "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))


def _tense_of(word_forms: tuple[str, ...], found: str) -> set[int]:
    return {t for t, form in enumerate(word_forms) if form == found}


_PARTS = {  # phrase -> the factor value it belongs to
    "subject": {s: topic for topic, subs in _SUBJECTS.items() for s in subs},
    "object": {o: topic for topic, objs in _OBJECTS.items() for o in objs},
    "adjective": {a: s for s, adjs in _ADJECTIVES.items() for a in adjs},
}
_VERB_FORMS = {form: (topic, forms) for topic, verbs in _VERBS.items() for forms in verbs
               for form in forms}  # fmt: skip
_CLAUSE_FORMS = {_clause(c, t): (sentiment, t) for sentiment, cs in _CLAUSES.items() for c in cs
                 for t in range(3)}  # fmt: skip
_SENTENCE = re.compile(
    rf"(?P<subject>{_alternatives(_PARTS['subject'])}) (?P<verb>{_alternatives(_VERB_FORMS)}) "
    rf"(?P<object>{_alternatives(_PARTS['object'])}) (?P<time>{_alternatives(_TIMES)}) and it "
    rf"(?P<be>{_alternatives(_BE)}) (?P<adjective>{_alternatives(_PARTS['adjective'])})"
    rf"(?: , (?P<clause>{_alternatives(_CLAUSE_FORMS)}))? \."
)


def normalize(sentence: str) -> str:
    """Spacing as `generate` writes it: one space between words, ',' and '.' as words."""
    return " ".join(re.sub(r"\s*([,.])\s*", r" \1 ", sentence.strip().lower()).split())


def parse(sentence: str) -> dict | None:
    """The factors of a sentence of the grammar (`generate`), or None when it is not one.

    Grammatical means: every phrase is one of the grammar's, subject, verb and object share a
    topic, verb, time word, 'was/is/will be' and the clause share a tense, and the adjective and
    the clause share a sentiment (so a decoded sentence that mixes two topics is not grammatical).
    """
    m = _SENTENCE.fullmatch(normalize(sentence))
    if m is None:
        return None
    topic, forms = _VERB_FORMS[m["verb"]]
    topics = {_PARTS["subject"][m["subject"]], topic, _PARTS["object"][m["object"]]}
    tenses = (_tense_of(forms, m["verb"]) & _tense_of(_TIMES, m["time"])
              & _tense_of(_BE, m["be"]))  # fmt: skip
    sentiment = _PARTS["adjective"][m["adjective"]]
    if m["clause"] is not None:
        clause_sentiment, clause_tense = _CLAUSE_FORMS[m["clause"]]
        tenses &= {clause_tense}
        if clause_sentiment != sentiment:
            return None
    if len(topics) != 1 or len(tenses) != 1:
        return None
    return {"topic": topic, "sentiment": sentiment, "tense": FACTORS["tense"][tenses.pop()],
            "length": "short" if m["clause"] is None else "long"}  # fmt: skip
