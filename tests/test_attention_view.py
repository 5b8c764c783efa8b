"""The CircuitsVis view is drawn offline and shows the pattern it is given."""
import json
import re

import pytest
import torch

from utils.attention_view import attention_heads_view


def _props(html: str) -> dict:
    """The properties CircuitsVis renders, read back from the HTML."""
    match = re.search(r"CircuitsVis\.AttentionHeads,\s*(\{.*\})\s*\)\s*</script>", html, re.S)
    assert match, "no CircuitsVis.render(...) call of the AttentionHeads view in the output"
    return json.loads(match.group(1))


def test_view_is_offline_and_carries_the_pattern():
    pattern = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(0)).tril()
    tokens = ["<bos>", "The", "capital", "of", "France"]
    html = attention_heads_view(pattern, tokens, head_names=["0.0", "0.1", "0.2"]).data
    assert "unpkg" not in html and "https://" not in html.split("CircuitsVis.render")[-1]
    assert "<script crossorigin type=\"module\">" in html and len(html) > 1_000_000, "the viewer's script is not inlined"
    props = _props(html)
    assert props["tokens"] == tokens and props["attentionHeadNames"] == ["0.0", "0.1", "0.2"]
    torch.testing.assert_close(torch.tensor(props["attention"]), pattern)


def test_a_batched_pattern_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="drop the batch dimension"):
        attention_heads_view(torch.rand(1, 2, 4, 4), ["a", "b", "c", "d"])
