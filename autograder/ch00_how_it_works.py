"""Checks for chapter 00: how this course works."""
import torch

from autograder.core import checks, expect, expect_close


def _scores(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3


@checks("causal_attention_pattern")
def check_rows_sum_to_one(impl, ref):
    """Each query's attention is a probability distribution over keys."""
    pattern = impl(_scores(0, 2, 3, 5, 5))
    expect_close(pattern.sum(-1), torch.ones(2, 3, 5), atol=1e-5, what="each row's sum",
                 hint="did you take the softmax over the key dimension (dim=-1)?")


@checks("causal_attention_pattern")
def check_no_attention_to_the_future(impl, ref):
    """No query position attends to a later key position."""
    pattern = impl(_scores(1, 4, 6, 6))
    future = torch.ones(6, 6, dtype=torch.bool).triu(1)
    leaked = pattern[..., future].abs().max().item()
    expect(leaked == 0, f"queries attend to later keys (up to {leaked:.3g}); did you forget the causal mask, "
           "or mask with 0 instead of -inf before the softmax?")


@checks("causal_attention_pattern")
def check_matches_reference(impl, ref):
    """Same values as the reference, on a batch of heads."""
    scores = _scores(2, 2, 4, 7, 7)
    expect_close(impl(scores), ref(scores), hint="mask the future with -inf, then softmax over keys")


@checks("causal_attention_pattern", hidden=True)
def check_fresh_random_scores(impl, ref):
    """Fresh random inputs of a new shape, with large scores."""
    scores = torch.randn(3, 2, 9, 9) * 10
    expect_close(impl(scores), ref(scores), hint="mask the future with -inf, then softmax over keys")
