"""Realistic wrong versions of chapter 00's exercises."""
import torch


def softmax_without_mask(scores):
    """Forgets the causal mask."""
    return scores.softmax(dim=-1)


def mask_with_zero(scores):
    """Masks with 0 instead of -inf, so future keys keep weight exp(0)."""
    future = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
    return scores.masked_fill(future, 0.0).softmax(dim=-1)


def softmax_over_queries(scores):
    """Takes the softmax over the query dimension."""
    future = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-2).nan_to_num(0.0)


def masks_in_place(scores):
    """Right values, but overwrites the caller's scores tensor."""
    future = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
    scores.masked_fill_(future, float("-inf"))
    return scores.softmax(dim=-1)


WRONG = {"causal_attention_pattern": [softmax_without_mask, mask_with_zero, softmax_over_queries, masks_in_place]}
