"""Reference solutions for chapter 00: how this course works."""
import torch
from torch import Tensor


def causal_attention_pattern(scores: Tensor) -> Tensor:
    """Turn raw attention scores into a causal attention pattern.

    scores: [..., query_pos, key_pos] raw scores (query times key, already scaled).
    Returns a tensor of the same shape where each query position attends only to itself and
    earlier key positions, and each row sums to 1.
    """
    n_query, n_key = scores.shape[-2:]
    future = torch.ones(n_query, n_key, dtype=torch.bool, device=scores.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)
