"""CircuitsVis's attention-heads view, rendered so that it works offline.

CircuitsVis (``circuitsvis.attention.attention_heads``) is the attention viewer that most of the
field's tutorials use: a thumbnail per head, and the selected head drawn large with its tokens.
Its notebook display fetches the viewer's script from a CDN whenever the machine happens to be
online, so a notebook saved there shows nothing later on an offline machine, and its ``str()``
form always points at the CDN. This module always embeds the script (1.3 MB) in the output.
"""
from __future__ import annotations

import circuitsvis
from IPython.display import HTML
from torch import Tensor


def attention_heads_view(pattern: Tensor, tokens: list[str], head_names: list[str] | None = None) -> HTML:
    """The CircuitsVis attention-heads view of one prompt, with its script inlined.

    pattern: [n_heads, query_pos, key_pos], one layer's attention on one prompt
    (``cache["pattern", layer][0]``); tokens: one label per position.
    head_names: a name per head, for example ``["0.0", "0.1", ...]``.
    Returns an ``IPython.display.HTML`` object; a notebook cell that ends with it draws the view.
    """
    if pattern.ndim != 3 or not pattern.shape[1] == pattern.shape[2] == len(tokens):
        raise ValueError(f"pattern is {list(pattern.shape)} with {len(tokens)} tokens; expected "
                         "[n_heads, n_tokens, n_tokens]: pass one prompt's pattern (drop the batch dimension)")
    view = circuitsvis.attention.attention_heads(
        attention=pattern.detach().float().cpu(), tokens=list(tokens), attention_head_names=head_names)
    return HTML(view.local_src)
