"""The small world: deterministic, with a test split that training never sees, and answers
that are single tokens of the course tokenizer."""
import re

import pytest
from transformers import AutoTokenizer

from utils import world
from utils.tokenizer import split_words
from utils.models import MODELS_DIR

DATASETS = {
    "ioi": lambda split, seed=0: world.ioi_prompts(200, seed, split),
    "facts": lambda split, seed=0: world.fact_prompts(200, seed, split),
    "greater_than": lambda split, seed=0: world.greater_than_prompts(200, seed, split),
    "opinions": lambda split, seed=0: world.opinion_prompts(200, seed, split),
}


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(MODELS_DIR / "world-gpt2"))


@pytest.mark.parametrize("family", DATASETS)
def test_datasets_are_deterministic_from_the_seed(family):
    assert DATASETS[family]("train", 3) == DATASETS[family]("train", 3)
    assert DATASETS[family]("train", 3) != DATASETS[family]("train", 4)


def test_text_is_deterministic_from_the_seed():
    assert world.generate_text(20, seed=1) == world.generate_text(20, seed=1)
    assert world.generate_text(20, seed=1) != world.generate_text(20, seed=2)
    assert world.repeated_sequences(5, 10, seed=1) == world.repeated_sequences(5, 10, seed=1)


def test_world_has_the_promised_size():
    assert len(world.NAMES) >= 60 and len(set(world.NAMES)) == len(world.NAMES)
    assert len(world.COUNTRIES) >= 40
    assert len(world.IOI_TEMPLATES) - world.IOI_N_TEST_TEMPLATES >= 15


def test_ioi_has_both_orders_and_a_corrupted_twin():
    prompts = world.ioi_prompts(100, 0, "test")
    assert {p.fields["order"] for p in prompts} == {"ABBA", "BABA"}
    for p in prompts:
        io, s, c = p.fields["IO"], p.fields["S"], p.fields["C"]
        words = split_words(p.prompt)
        assert words.count(s) == 2 and words.count(io) == 1 and c not in (io, s)
        assert p.answer == f" {io}" and p.wrong == f" {s}"
        assert p.corrupted == p.prompt[::-1].replace(s[::-1], c[::-1], 1)[::-1]  # last S -> C


def test_test_split_is_disjoint_from_training():
    for family, make in DATASETS.items():
        train = {p.prompt for p in make("train")}
        test = {p.prompt for p in make("test")}
        assert not train & test, family
    train_ioi, test_ioi = world.ioi_prompts(2000, 0, "train"), world.ioi_prompts(500, 0, "test")
    assert not {n for p in train_ioi for n in (p.fields["IO"], p.fields["S"])} & set(world.IOI_TEST_NAMES)
    assert not {p.template for p in train_ioi} & set(range(len(world.IOI_TEMPLATES) - world.IOI_N_TEST_TEMPLATES,
                                                           len(world.IOI_TEMPLATES)))
    held = {(p.fields["country"], p.fields["attribute"], p.template) for p in world.fact_prompts(None, 0, "test")}
    trained = {(p.fields["country"], p.fields["attribute"], p.template) for p in world.fact_prompts(None, 0, "train")}
    assert not held & trained and len(held) == 3 * len(world.COUNTRIES)


@pytest.mark.parametrize("family", DATASETS)
def test_held_out_names_the_split_each_prompt_was_drawn_from(family):
    """``world.held_out`` is the generators' own split rule (the evaluation tests rely on it)."""
    for seed in range(3):
        for split in world.SPLITS:
            assert all(world.held_out(p) == (split == "test") for p in DATASETS[family](split, seed)), (family, split)
    if family == "facts":
        for split in world.SPLITS:
            assert all(world.held_out(p) == (split == "test") for p in world.fact_prompts(None, 0, split))


def test_training_text_never_contains_a_test_prompt():
    text = " ".join(world.generate_text(1500, seed=0, split="train"))
    for family, make in DATASETS.items():
        leaked = [p.prompt for p in make("test")[:50] if p.prompt in text]
        assert not leaked, f"{family} test prompts in the training text: {leaked[:3]}"


@pytest.mark.parametrize("family", DATASETS)
def test_answers_are_single_tokens(tokenizer, family):
    for split in world.SPLITS:
        for p in DATASETS[family](split):
            for answer in filter(None, (p.answer, p.wrong)):
                assert len(tokenizer(answer, add_special_tokens=False).input_ids) == 1, answer
            ids = tokenizer(p.prompt, add_special_tokens=False).input_ids
            assert tokenizer.unk_token_id not in ids, p.prompt
            if p.corrupted:
                assert len(tokenizer(p.corrupted, add_special_tokens=False).input_ids) == len(ids)


def test_years_split_like_gpt2(tokenizer):
    tokens = tokenizer.tokenize("The war lasted from the year 1732 to the year 17")
    assert tokens[-7:] == ["year", "17", "32", "to", "the", "year", "17"]
    assert all(len(tokenizer(f" {y:02d}", add_special_tokens=False).input_ids) == 1 for y in range(100))


def test_every_word_of_the_pool_is_a_token(tokenizer):
    for word in world.word_pool():
        assert len(tokenizer(word, add_special_tokens=False).input_ids) == 1, word


def test_composed_ioi_sentences_keep_every_held_out_part_for_the_test(tokenizer):
    """The training-only IOI family varies structure, but never with a held-out template's
    distinctive words or verbs, a held-out name or a held-out pair; the answer is the name said
    once, and both name orders occur."""
    text = world.generate_text(300, seed=0, family_weights={"ioi_composed": 1.0}, random_repeat_prob=0)
    ends_with_a_name = re.compile(r".*?\b(?:%s)\." % "|".join(world.NAMES))
    sentences = [s.strip() for doc in text for s in ends_with_a_name.findall(doc)]
    held_out_words = {"morning", "Later", "Once", "sitting", "cleaned", "left"}
    orders = set()
    for sentence in sentences:
        words = split_words(sentence)
        assert not held_out_words & set(words), sentence
        names = [w for w in words if w in world.NAMES]
        io, s = names[-1], names[2]
        assert names.count(io) == 2 and names.count(s) == 2 and io != s and len(names) == 4, sentence
        assert not {io, s} & set(world.IOI_TEST_NAMES) and not world._held_out_pair(io, s)
        orders.add("ABBA" if names[0] == io else "BABA")
        assert tokenizer.unk_token_id not in tokenizer(sentence, add_special_tokens=False).input_ids
    assert orders == {"ABBA", "BABA"} and len(sentences) > 500
    test_prompts = {p.prompt for p in world.ioi_prompts(500, 0, "test")}
    assert not any(prompt in doc for doc in text for prompt in test_prompts)
