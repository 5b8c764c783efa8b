"""The word-level tokenizer of the course's small-world models.

One token per word, per punctuation mark and per pair of digits, so token strings stay
readable: ``"When Mary and John went to the store, John"`` becomes
``<bos> When Mary and John went to the store , John``. Spaces are not part of tokens, so a word
is the same token at the start of a text and after a space: ``" Mary"`` and ``"Mary"`` are both
the single token ``Mary``. Numbers split into pairs of digits, as GPT-2 splits years:
``1732`` is ``17`` ``32``.

The tokenizer is a Hugging Face ``PreTrainedTokenizerFast`` saved beside every model. It does
not add ``<bos>`` itself; TransformerLens prepends ``tokenizer.bos_token`` when it tokenizes
(``model.to_tokens``, ``model.to_str_tokens``, ``model(text)``), just as it does for GPT-2.
"""
from __future__ import annotations

from tokenizers import Regex, Tokenizer, models, pre_tokenizers

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK]

# Words, pairs of digits, a lone digit, or any other single non-space character.
PIECE = Regex(r"[A-Za-z]+|\d\d|\d|[^\sA-Za-z\d]")


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Split on whitespace, then into the pieces that become tokens."""
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                    pre_tokenizers.Split(PIECE, behavior="isolated")])


def split_words(text: str) -> list[str]:
    """The token strings ``text`` becomes (without ``<bos>``)."""
    return [piece for piece, _ in pre_tokenizer().pre_tokenize_str(text)]


def build_tokenizer(texts, n_positions: int):
    """A ``PreTrainedTokenizerFast`` whose vocabulary is every piece in ``texts`` plus all
    two-digit numbers and digits, sorted, after the special tokens (``<bos>`` is id 0)."""
    from transformers import PreTrainedTokenizerFast

    pieces = {f"{i:02d}" for i in range(100)} | {str(i) for i in range(10)}
    splitter = pre_tokenizer()
    for text in texts:
        pieces.update(piece for piece, _ in splitter.pre_tokenize_str(text))
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + sorted(pieces))}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        model_max_length=n_positions, padding_side="right")
