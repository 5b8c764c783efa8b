"""Chapter 06's references agree with the field's tools and with each other on the course model.

The ``tl4`` tests take TransformerLens 4.x's ``tools.analysis.interchange`` as the oracle
(``mean_difference_basis``, ``probe_basis``, ``NormMatchedPlacebo``); ``./run test-tl3``
deselects them.
"""
import pytest
import torch

from solutions.ch06_steering import (ablate_direction, contrastive_activations, mean_difference_direction,
                                     orthogonalize_weights, placebo_direction, steered_logits, train_probe)
from utils import ch06_steering as ch06


@pytest.fixture(scope="module")
def model():
    from utils.models import cached_model

    return cached_model()


@pytest.fixture(scope="module")
def pairs(model):
    return ch06.contrastive_pairs(model, 24, seed=0, split="train")


@pytest.fixture(scope="module")
def layer2(model, pairs):
    """Positive and negative activations entering layer 2, averaged from the adjective on."""
    return (contrastive_activations(model, pairs["pos"], pairs["starts"], 2),
            contrastive_activations(model, pairs["neg"], pairs["starts"], 2))


def test_pairs_differ_only_at_their_adjective(model, pairs):
    for pos, neg, start in zip(pairs["pos"], pairs["neg"], pairs["starts"]):
        a, b = model.to_tokens(pos)[0], model.to_tokens(neg)[0]
        assert a.shape == b.shape and (a != b).nonzero().flatten().tolist() == [start]


@pytest.mark.parametrize("split", ["train", "test"])
def test_continent_pairs_differ_only_in_a_country_of_each_continent_and_split(model, split):
    pairs = ch06.continent_pairs(model, 40, seed=1, split=split)
    seen = set()
    for europe, asia, start in zip(pairs["pos"], pairs["neg"], pairs["starts"]):
        a, b = model.to_tokens(europe)[0], model.to_tokens(asia)[0]
        assert a.shape == b.shape and (a != b).nonzero().flatten().tolist() == [start]
        countries = model.to_string(a[start]).strip(), model.to_string(b[start]).strip()
        assert countries[0] in ch06.EUROPE and countries[1] in ch06.ASIA
        seen.update(countries)
    assert all((c in ch06.HELD_OUT_COUNTRIES) == (split == "test") for c in seen)
    assert len(seen) > 8  # many countries, not one pair repeated


def test_batched_activations_equal_one_prompt_at_a_time(model, pairs):
    """Right padding in the batch never reaches a real position (attention is causal)."""
    texts, starts = pairs["pos"][:6], pairs["starts"][:6]
    assert len({model.to_tokens(t).shape[1] for t in texts}) > 1  # the batch really is padded
    batched = contrastive_activations(model, texts, starts, 1)
    alone = torch.cat([contrastive_activations(model, [t], [s], 1) for t, s in zip(texts, starts)])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)


@pytest.mark.tl4
def test_mean_difference_direction_spans_tl4_mean_difference_basis(layer2):
    from transformer_lens.tools.analysis.interchange import mean_difference_basis

    pos, neg = layer2
    acts, labels = ch06.labelled(pos, neg)
    basis = mean_difference_basis(acts, labels.tolist())
    direction = mean_difference_direction(pos, neg)
    assert basis.shape == (acts.shape[1], 1)
    assert abs(float(basis[:, 0] @ direction / direction.norm())) > 1 - 1e-5


@pytest.mark.tl4
def test_probe_weights_span_tl4_probe_basis(layer2):
    from transformer_lens.tools.analysis.interchange import probe_basis

    acts, labels = ch06.labelled(*layer2)
    w, _ = train_probe(acts, labels, steps=100)
    basis = probe_basis(w[None])
    assert abs(float(basis[:, 0] @ w / w.norm())) > 1 - 1e-5


@pytest.mark.tl4
def test_placebo_moves_as_far_as_tl4_norm_matched_placebo(layer2):
    """Steering by v is the interchange from x to x + v inside span(v); TL's norm-matched
    placebo of it moves each x by |v| along the random direction, as the chapter's placebo does."""
    from transformer_lens.tools.analysis.interchange import NormMatchedPlacebo, SubspaceInterchange

    base = layer2[0][:5]
    vector = 20 * mean_difference_direction(*layer2) / mean_difference_direction(*layer2).norm()
    placebo = placebo_direction(vector, seed=3)
    tl = NormMatchedPlacebo(SubspaceInterchange((vector / vector.norm())[:, None]), (placebo / placebo.norm())[:, None])
    moved = tl(base, base + vector) - base
    sign = torch.sign(vector @ placebo)
    torch.testing.assert_close(moved, (sign * placebo).expand_as(moved), atol=1e-4, rtol=1e-4)


def test_ablation_hooks_leave_no_component_anywhere_in_the_stream(model, layer2):
    direction = mean_difference_direction(*layer2)
    unit = direction / direction.norm()
    hooks = [(name, lambda act, hook: ablate_direction(act, direction)) for name in ch06.write_hook_names(model)]
    tokens = model.to_tokens(ch06.VERDICT_PROMPTS[:3])
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: "resid" in n)
    for name, act in cache.items():
        assert (act @ unit).abs().max() < 1e-3, name


@pytest.mark.parametrize("name", ["world-neox", "world-gpt2"])
def test_orthogonalised_weights_give_the_logits_of_the_ablation_hooks(name):
    """Projecting a direction out of every write to the residual stream by hooks, and by
    rewriting the weights that write, is the same model, on both architectures (GPT-2 adds
    learned positions and ties its unembedding to its embedding, which must be untied first).

    Compatibility mode centres what the bridge writes into the stream and its logits, so the two
    agree for directions with zero mean (as every mean difference of the bridge's activations
    has) and up to a constant per position in the logits: compare log-probabilities."""
    from utils.models import load_hf_model, load_model

    bridge, hf = load_model(name), load_hf_model(name)
    pairs = ch06.contrastive_pairs(bridge, 24, seed=0, split="train")
    direction = mean_difference_direction(*(contrastive_activations(bridge, pairs[side], pairs["starts"], 2)
                                            for side in ("pos", "neg")))
    assert abs(float(direction.mean())) < 1e-4 * float(direction.norm())
    tokens = bridge.to_tokens(ch06.VERDICT_PROMPTS[:4])
    hooks = [(n, lambda act, hook: ablate_direction(act, direction)) for n in ch06.write_hook_names(bridge)]
    with torch.no_grad(), bridge.hooks(fwd_hooks=hooks):
        hooked = bridge(tokens)
    embeddings = 2 if hf.config.model_type == "gpt2" else 1  # GPT-2 learns its positions (wpe)
    assert ch06.orthogonalize_hf_model(hf, direction, orthogonalize_weights) == embeddings + 4 * bridge.cfg.n_layers
    with torch.no_grad():
        rewritten = hf(tokens).logits.log_softmax(-1)
        clean = bridge(tokens).log_softmax(-1)
    hooked = hooked.log_softmax(-1)
    assert (hooked - clean).abs().max() > 0.1  # the ablation does something
    torch.testing.assert_close(rewritten, hooked, atol=1e-3, rtol=1e-3)


def test_untying_keeps_the_unembedding_and_frees_it_from_the_embedding():
    from utils.models import load_hf_model

    hf = load_hf_model("world-gpt2")
    before = hf.get_output_embeddings().weight.detach().clone()
    assert ch06.untie_unembedding(hf) and not ch06.untie_unembedding(hf)
    with torch.no_grad():
        hf.get_input_embeddings().weight.zero_()
    torch.testing.assert_close(hf.get_output_embeddings().weight, before)


def test_steering_along_the_direction_moves_the_verdict_and_the_placebo_moves_it_less(model, layer2):
    direction = mean_difference_direction(*layer2)
    unit = direction / direction.norm()
    tokens = model.to_tokens(ch06.VERDICT_PROMPTS)

    def verdict(vector):
        return float(ch06.verdict_logit_difference(steered_logits(model, tokens, 2, vector), model).mean())

    zero = verdict(torch.zeros_like(unit))
    up, down = verdict(10 * unit) - zero, verdict(-10 * unit) - zero
    placebo = verdict(placebo_direction(10 * unit, 0)) - zero
    assert up > 0 > down and abs(placebo) < min(up, -down)


def test_firing_rates_read_each_text_at_its_adjective(model, pairs):
    """With the identity as encoder, a feature is a stream dimension: its rate is the fraction of
    texts whose stream, at their own adjective, is positive there (one text at a time here)."""
    hook = "blocks.2.hook_resid_pre"
    rates = ch06.firing_rates(model, pairs, hook, encode=lambda x: x)
    for side in ("pos", "neg"):
        rows = []
        for text, start in zip(pairs[side], pairs["starts"]):
            _, cache = model.run_with_cache(model.to_tokens(text), names_filter=hook)
            rows.append(cache[hook][0, start])
        expected = (torch.stack(rows) > 0).float().mean(dim=0)
        assert rates[side].shape == (model.cfg.d_model,)
        assert (rates[side] - expected).abs().max() <= 1 / len(rows) + 1e-6  # a sign flip of one text at most
        assert (rates[side] - expected).abs().mean() < 0.01


def test_polarity_reads_the_first_opinion_word():
    assert ch06.polarity(" wonderful . Overall it was bad") == 1
    assert ch06.polarity(" the dull film , good") == -1
    assert ch06.polarity(" . The country") == 0


def test_continent_direction_flips_held_out_asian_countries_and_its_placebo_does_not(model):
    """The chapter's second concept: the Europe - Asia direction entering layer 3, found from
    training countries only, makes the model answer " Europe" for held-out Asian countries at
    alpha = +10; a placebo of the same norm leaves " Asia" ahead even at alpha = +-40."""
    pairs = ch06.continent_pairs(model, 64, seed=0, split="train")
    direction = mean_difference_direction(*(contrastive_activations(model, pairs[side], pairs["starts"], 3)
                                            for side in ("pos", "neg")))
    prompts = [ch06.CONTINENT_TEMPLATE.format(country=c) for c in ch06.ASIA if c in ch06.HELD_OUT_COUNTRIES]
    tokens = model.to_tokens(prompts)

    def europe_over_asia(vector):
        return ch06.logit_difference(steered_logits(model, tokens, 3, vector), model, (" Europe", " Asia"))

    unit = direction / direction.norm()
    assert (europe_over_asia(torch.zeros_like(unit)) < 0).all()
    assert europe_over_asia(10 * unit).mean() > 0
    placebo = placebo_direction(unit, seed=0)
    assert all(europe_over_asia(alpha * placebo).mean() < 0 for alpha in (-40, 40))
