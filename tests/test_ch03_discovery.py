"""Chapter 03, part 2: circuit discovery recovers a planted circuit exactly, and attribution
patching, edge attribution and faithfulness agree with TransformerLens 4.x's
``tools.analysis`` (tests marked ``tl4``, which ``./run test-tl3`` deselects)."""
import pytest
import torch

from solutions import ch03_activation_patching as S
from utils import ch03_discovery as D
from utils.ch03_activation_patching import ioi_data
from utils.models import cached_model


@pytest.fixture(scope="module")
def planted():
    return D.planted_induction_model()


def _ioi(model, n=4, seed=0):
    """n IOI prompts of one template, their S-corrupted twins, answers and wrong answers."""
    data = ioi_data(model, n, seed=seed)
    return data.clean, data.corrupted, data.answer, data.wrong


def _discovered_edges(model, clean, corrupted, answer, wrong, threshold=D.PLANTED_THRESHOLD):
    deltas, grads = D.edge_inputs(model, clean, corrupted, answer, wrong)
    scores = S.edge_attribution_scores(deltas, grads, D.edge_mask(model))
    circuit = S.circuit_from_scores(scores, threshold, D.reader_owner(model))
    writers, readers = D.graph_nodes(model)
    return {(writers[w], readers[r]) for w, r in circuit.nonzero().tolist()}, scores


def test_planted_model_solves_its_task_by_induction(planted):
    clean, _, answer, _ = D.planted_batch(32, seed=1)
    with torch.no_grad():
        logits, cache = planted.run_with_cache(clean)
    assert (logits[:, -1].argmax(-1) == answer).all()
    assert cache["pattern", 0][:, 0].diagonal(-1, -2, -1).mean() > 0.9, "head 0.0 should attend to the previous token"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edge_attribution_recovers_exactly_the_planted_edges(planted, seed):
    """Every planted edge, and no other, on fresh batches of repeated random tokens; the weakest
    planted edge scores several times the strongest other one."""
    edges, scores = _discovered_edges(planted, *D.planted_batch(16, seed=seed))
    assert edges == set(D.PLANTED_EDGES)
    writers, readers = D.graph_nodes(planted)
    planted_mask = torch.zeros_like(scores, dtype=torch.bool)
    for writer, reader in D.PLANTED_EDGES:
        planted_mask[writers.index(writer), readers.index(reader)] = True
    assert scores[planted_mask].abs().min() > 4 * scores[~planted_mask].abs().max()


def test_cutting_the_k_composition_edge_prunes_the_previous_token_head(planted):
    """With the edge 0.0 -> 1.0.k removed, head 0.0 reaches the logits no more, so the edge into
    its value goes too, although its own score is above the threshold."""
    deltas, grads = D.edge_inputs(planted, *D.planted_batch(16, seed=3))
    scores = S.edge_attribution_scores(deltas, grads, D.edge_mask(planted))
    writers, readers = D.graph_nodes(planted)
    into_value = (writers.index("embed"), readers.index("A0.0.v"))
    assert scores[into_value].abs() > D.PLANTED_THRESHOLD
    scores[writers.index("A0.0"), readers.index("A1.0.k")] = 0.0
    circuit = S.circuit_from_scores(scores, D.PLANTED_THRESHOLD, D.reader_owner(planted))
    kept = {(writers[w], readers[r]) for w, r in circuit.nonzero().tolist()}
    assert kept == set(D.PLANTED_EDGES) - {("A0.0", "A1.0.k"), ("embed", "A0.0.v")}


def test_faithfulness_of_the_planted_circuit(planted):
    """Keeping the two planted heads keeps the task; keeping only the induction head, with 0.0
    mean-ablated, loses most of it."""
    clean, _, answer, wrong = D.planted_batch(32, seed=4)
    reference = D.planted_batch(64, seed=5)[1]
    full, _ = S.faithfulness(planted, clean, answer, wrong, reference, [(0, 0), (1, 0), (0, 1), (1, 1)], [0, 1])
    kept, correct = S.faithfulness(planted, clean, answer, wrong, reference, [(0, 0), (1, 0)], [])
    torch.testing.assert_close(kept, full, atol=1e-5, rtol=1e-5)
    assert correct.mean() == 1
    broken, _ = S.faithfulness(planted, clean, answer, wrong, reference, [(1, 0)], [])
    assert broken.mean() < 0.5 * full.mean()


@pytest.mark.tl4
def test_attribution_patch_agrees_with_tools_analysis():
    """Per-head estimates, summed over positions, equal TL 4's node scores summed the same way."""
    from transformer_lens.tools.analysis.attribution_patching import attribution_patch

    model = cached_model()
    clean, corrupted, answer, wrong = _ioi(model)
    ours = torch.stack([S.attribution_patch(model, clean, corrupted, answer, wrong, f"blocks.{layer}.attn.hook_z").sum(0)
                        for layer in range(model.cfg.n_layers)])
    theirs = torch.zeros_like(ours)
    for i in range(len(answer)):
        metric = lambda logits, i=i: logits[0, -1, answer[i]] - logits[0, -1, wrong[i]]  # noqa: E731
        result = attribution_patch(model, clean[i:i + 1], corrupted[i:i + 1], metric)
        for node, score in result.node_scores.items():
            if node.kind == "attn_head_out":
                theirs[node.layer, node.head] += score / len(answer)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def _tl_node_name(node) -> str:
    """Our name for one of tools.analysis's nodes (which also carry a position)."""
    if node.kind == "embed":
        return "embed"
    if node.kind == "logits":
        return "logits"
    if node.kind in ("attn_head_out", "q_input", "k_input", "v_input"):
        name = f"A{node.layer}.{node.head}"
        return name if node.kind == "attn_head_out" else f"{name}.{node.kind[0]}"
    return f"M{node.layer}"


@pytest.mark.tl4
def test_edge_attribution_agrees_with_tools_analysis():
    """Our edge scores equal TL 4's per-position edge scores summed over positions, averaged
    over prompts; TL's graph has the same edges as our mask."""
    from transformer_lens.tools.analysis.attribution_patching import EdgeAttributionConfig, attribution_patch

    model = cached_model()
    clean, corrupted, answer, wrong = _ioi(model, n=2)
    deltas, grads = D.edge_inputs(model, clean, corrupted, answer, wrong)
    ours = S.edge_attribution_scores(deltas, grads, D.edge_mask(model))
    writers, readers = D.graph_nodes(model)
    theirs, seen = torch.zeros_like(ours), torch.zeros_like(ours, dtype=torch.bool)
    for i in range(len(answer)):
        metric = lambda logits, i=i: logits[0, -1, answer[i]] - logits[0, -1, wrong[i]]  # noqa: E731
        result = attribution_patch(model, clean[i:i + 1], corrupted[i:i + 1], metric,
                                   EdgeAttributionConfig(granularity="edge"))
        for (writer, reader), score in result.edge_scores.items():
            w, r = writers.index(_tl_node_name(writer)), readers.index(_tl_node_name(reader))
            theirs[w, r] += score / len(answer)
            seen[w, r] = True
    assert torch.equal(seen, D.edge_mask(model))
    torch.testing.assert_close(ours, theirs, atol=2e-4, rtol=1e-4)


@pytest.mark.tl4
def test_faithfulness_agrees_with_tools_analysis():
    """Mean-ablating the heads and MLPs outside a circuit gives, prompt by prompt, the metric TL
    4's faithfulness gives when every edge out of those components is ablated (mean ablation
    over the same reference prompts)."""
    from transformer_lens.tools.analysis.attribution_patching import (
        FaithfulnessConfig, _edge_hook_flags, cache_activation_and_gradient, enumerate_edges, faithfulness)
    from transformer_lens.tools.analysis.attribution_patching import _edge_hook_names

    model = cached_model()
    clean, corrupted, answer, wrong = _ioi(model, n=3)
    reference = ioi_data(model, 12, corruption="IO", seed=7).corrupted
    heads, mlps = [(0, 0), (1, 1), (1, 2), (2, 0), (3, 3)], [0, 2]
    ours, _ = S.faithfulness(model, clean, answer, wrong, reference, heads, mlps)
    ablated = {f"A{layer}.{head}" for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)
               if (layer, head) not in heads} | {f"M{layer}" for layer in range(model.cfg.n_layers) if layer not in mlps}
    for i in range(len(answer)):
        metric = lambda logits, i=i: logits[0, -1, answer[i]] - logits[0, -1, wrong[i]]  # noqa: E731
        with _edge_hook_flags(model):
            cache = cache_activation_and_gradient(model, corrupted[i:i + 1], metric,
                                                  names_filter=_edge_hook_names(model.cfg.n_layers), compute_gradient=False)
            edges = enumerate_edges(model, cache)
        circuit = [(w, r) for w, r in edges if _tl_node_name(w) not in ablated]
        result = faithfulness(model, clean[i:i + 1], corrupted[i:i + 1], metric, circuit,
                              FaithfulnessConfig(ablation="mean"), mean_tokens=reference)
        theirs = result.corrupt_metric + result.recovered * (result.full_metric - result.corrupt_metric)
        assert abs(float(ours[i]) - theirs) < 1e-3, (i, float(ours[i]), theirs)
