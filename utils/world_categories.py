"""The world's token categories: what kind of thing each token of the small world names.

Because the course writes its own world, every content word belongs to a list in
:mod:`utils.world` (names, countries, capitals, objects, opinion words, ...). That gives
ground-truth labels no web-scale model has: a feature or neuron whose top activations all fall on
capitals *is* a capital detector, and we can count how many units are like that.

``token_category("Paris")`` is ``"capital"``; ``category_of_ids(model)`` maps every token id of a
model's vocabulary to an index into :data:`CATEGORY_NAMES` at once, for labelling millions of
activations with one indexing operation.

A few words sit in two of the world's lists. Each gets one category, the one listed first in
:data:`CATEGORIES`, and :data:`SHARED_WORDS` documents every such case:

- ``book`` is an object and a review item -> ``object``;
- ``hotel`` and ``restaurant`` are places and review items -> ``place``;
- ``German``, ``English``, ``Spanish``, ... are one language of several countries: one category,
  no conflict.

Continents of the Americas are two tokens (``North America``): ``North``, ``South`` and
``America`` are all ``continent``. Every two-digit token is ``year``: the generator writes
numbers only as four-digit years, split into a century (``17``) and two digits (``32``), so
``17`` is a century in one place and a year's end in another, and both are parts of a year.
"""
from __future__ import annotations

import torch

from utils import world

CATEGORIES = {
    "person name": "a person's first name (Mary, John, ...)",
    "country": "a country (France, Japan, ...)",
    "capital": "a country's capital city (Paris, Tokyo, ...)",
    "language": "a country's official language (French, Japanese, ...)",
    "continent": "a continent, or a word of one (Europe, North, America, ...)",
    "year": "a two-digit piece of a four-digit year: its century (17) or its end (32)",
    "number": "a single digit, which the world's text never writes alone",
    "object": "a thing people give and buy (drink, book, key, ...)",
    "place": "a place people go to (store, park, hotel, ...)",
    "review item": "something reviewed (film, concert, meal, ...)",
    "positive": "a positive opinion word (wonderful, great, good, ...)",
    "negative": "a negative opinion word (terrible, dull, bad, ...)",
    "event": "an event with a start and an end year (war, voyage, ...)",
    "weather": "a word for the day's weather (sunny, rainy, ...)",
    "animal": "an animal (dog, cat, ...)",
    "colour": "a colour (red, blue, ...)",
    "job": "a job (teacher, doctor, ...)",
    "punctuation": "a punctuation mark (, . :)",
    "special": "a special token (<bos>, <eos>, <pad>, <unk>)",
    "other": "any other word: function words, verbs, pronouns, template words",
}
"""Every category with a one-line description, in precedence order (see the module docstring)."""

CATEGORY_NAMES = list(CATEGORIES)
OTHER = CATEGORY_NAMES.index("other")

SHARED_WORDS = {"book": ("object", "review item"), "hotel": ("place", "review item"),
                "restaurant": ("place", "review item")}
"""Words that are in two of the world's lists, with their categories; the first one wins."""


def category_words() -> dict[str, set[str]]:
    """The words of every category (except ``other``), read from :mod:`utils.world`."""
    rows = world.COUNTRIES
    return {
        "person name": set(world.NAMES),
        "country": {row[0] for row in rows},
        "capital": {row[1] for row in rows},
        "language": {row[2] for row in rows},
        "continent": {word for row in rows for word in row[3].split()},
        "year": {f"{i:02d}" for i in range(100)},
        "number": {str(i) for i in range(10)},
        "object": set(world.OBJECTS),
        "place": set(world.PLACES),
        "review item": set(world.REVIEW_ITEMS),
        "positive": set(world.POSITIVE) | {world.POLARITY_WORDS["positive"].strip()},
        "negative": set(world.NEGATIVE) | {world.POLARITY_WORDS["negative"].strip()},
        "event": set(world.GT_NOUNS),
        "weather": set(world.WEATHER),
        "animal": set(world.ANIMALS),
        "colour": set(world.COLOURS),
        "job": set(world.JOBS),
        "punctuation": {",", ".", ":"},
        "special": {"<bos>", "<eos>", "<pad>", "<unk>"},
    }


def _lookup() -> dict[str, str]:
    """Word -> category, the first category in :data:`CATEGORIES` winning for shared words."""
    table: dict[str, str] = {}
    for category, words in category_words().items():
        for word in words:
            table.setdefault(word, category)
    return table


_TABLE = _lookup()


def token_category(token: str) -> str:
    """The category of one token string, ``"other"`` for a word in none of the world's lists.

    Surrounding spaces are ignored, and so is GPT-2's space marker ``Ġ``, so ``" Paris"`` and
    ``"ĠParis"`` are capitals too. Matching is case-sensitive: ``"The"`` and ``"the"`` are both
    ``other``, but ``"Turkey"`` is a country and ``"turkey"`` would not be.
    """
    if not isinstance(token, str):
        raise TypeError(f"token_category takes a token string, not {type(token).__name__}")
    word = token.strip()
    if word.startswith("Ġ"):
        word = word[1:]
    return _TABLE.get(word, "other")


def category_of_ids(model) -> torch.Tensor:
    """A LongTensor ``[d_vocab]``: for each token id of ``model``'s vocabulary (a model with a
    ``.tokenizer``, or a tokenizer), the index of its category in :data:`CATEGORY_NAMES`.

    ``category_of_ids(model)[tokens]`` labels a whole batch of token ids in one step.
    """
    tokenizer = getattr(model, "tokenizer", model)
    if not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise TypeError("category_of_ids needs a model with a .tokenizer, or a Hugging Face tokenizer")
    d_vocab = getattr(getattr(model, "cfg", None), "d_vocab", None) or len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(min(d_vocab, len(tokenizer)))))
    ids = [CATEGORY_NAMES.index(token_category(t)) for t in tokens]
    ids += [OTHER] * (d_vocab - len(ids))  # padding rows of an embedding larger than the vocabulary
    return torch.tensor(ids, dtype=torch.long)
