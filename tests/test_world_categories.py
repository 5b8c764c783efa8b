"""The world's token categories: every world list maps to its category, every token of the
bundled vocabulary gets exactly one, and the vectorised map agrees with the per-token one."""
import pytest
import torch
from transformers import AutoTokenizer

from utils import world
from utils.models import MODELS_DIR, bundled_models
from utils.world_categories import (CATEGORIES, CATEGORY_NAMES, SHARED_WORDS, category_of_ids,
                                    category_words, token_category)

WORLD_LISTS = {
    "person name": world.NAMES,
    "country": [row[0] for row in world.COUNTRIES],
    "capital": [row[1] for row in world.COUNTRIES],
    "language": [row[2] for row in world.COUNTRIES],
    "object": world.OBJECTS,
    "place": world.PLACES,
    "review item": world.REVIEW_ITEMS,
    "positive": world.POSITIVE + ["good"],
    "negative": world.NEGATIVE + ["bad"],
    "event": world.GT_NOUNS,
    "weather": world.WEATHER,
    "animal": world.ANIMALS,
    "colour": world.COLOURS,
    "job": world.JOBS,
    "year": world.CENTURIES + ["00", "07", "32", "99"],
}


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(MODELS_DIR / "world-neox"))


@pytest.mark.parametrize("category", WORLD_LISTS)
def test_every_world_list_maps_to_its_category(category):
    wrong = {w: token_category(w) for w in WORLD_LISTS[category]
             if token_category(w) != category and w not in SHARED_WORDS}
    assert not wrong, wrong


def test_continents_and_their_words():
    for word in ["Europe", "Asia", "Africa", "Oceania", "North", "South", "America"]:
        assert token_category(word) == "continent"


def test_function_words_and_unknown_words_are_other():
    for word in ["the", "The", "to", "gave", "When", "He", "capital", "year", "zebra", "turkey"]:
        assert token_category(word) == "other", word


def test_spaces_and_gpt2_space_marker_are_ignored():
    assert token_category(" Paris") == token_category("ĠParis") == "capital"
    assert token_category(" Mary ") == "person name"


def test_bad_input_says_what_it_needs():
    with pytest.raises(TypeError, match="token string"):
        token_category(3)
    with pytest.raises(TypeError, match="tokenizer"):
        category_of_ids(object())


def test_words_in_two_lists_are_exactly_the_documented_ones():
    words = category_words()
    seen: dict[str, list[str]] = {}
    for category, members in words.items():
        for word in members:
            seen.setdefault(word, []).append(category)
    shared = {w: tuple(cats) for w, cats in seen.items() if len(cats) > 1}
    assert shared == SHARED_WORDS
    for word, categories in SHARED_WORDS.items():
        assert token_category(word) == categories[0]


def test_every_category_is_described_and_used(tokenizer):
    assert all(CATEGORIES[name].strip() for name in CATEGORY_NAMES)
    ids = category_of_ids(tokenizer)
    assert set(ids.tolist()) == set(range(len(CATEGORY_NAMES)))


def test_vectorised_map_agrees_with_token_category_on_every_bundled_vocabulary():
    for name in bundled_models():
        tokenizer = AutoTokenizer.from_pretrained(str(MODELS_DIR / name))
        ids = category_of_ids(tokenizer)
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        assert ids.dtype == torch.long and len(ids) == len(tokenizer)
        assert [CATEGORY_NAMES[i] for i in ids] == [token_category(t) for t in tokens], name


def test_model_with_padded_embedding_gets_other_rows(tokenizer):
    class Cfg:
        d_vocab = len(tokenizer) + 3

    class Model:
        cfg = Cfg()

    Model.tokenizer = tokenizer
    ids = category_of_ids(Model())
    assert len(ids) == Cfg.d_vocab
    assert [CATEGORY_NAMES[i] for i in ids[-3:]] == ["other"] * 3
    assert CATEGORY_NAMES[ids[tokenizer.convert_tokens_to_ids("Paris")]] == "capital"
