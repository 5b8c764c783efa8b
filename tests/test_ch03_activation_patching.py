"""Chapter 03, part 1 beyond the generic check tests: the patching references equal
TransformerLens's `patching` functions on the same inputs (both TransformerLens versions), path
patching equals its algebraic definition (and TL 4's direct path patching), exact identities of
denoising and causal tracing, aligned datasets, and every check on a second, differently shaped
model."""

import pytest
import torch
from transformer_lens import patching

from autograder.core import check_model, load_all_chapters
from tests.conftest import assert_checks_hold
from solutions import ch03_activation_patching as S
from tests.wrong.ch03_activation_patching import WRONG
from utils import ch03_activation_patching as U

load_all_chapters()
PART_1 = ["logit_difference", "normalised_metric", "probability_difference", "patch_residual_stream",
          "patch_layer_outputs", "patch_head_outputs", "patch_head_outputs_by_position", "causal_tracing", "path_patch"]


@pytest.fixture(scope="module")
def ioi():
    """The check model, six IOI prompts (subject replaced) and the caches of both runs."""
    model = check_model()
    data = U.ioi_data(model, 6)
    with torch.no_grad():
        _, clean = model.run_with_cache(data.clean)
        _, corrupted = model.run_with_cache(data.corrupted)
    return model, data, clean, corrupted


def _metric(data):
    return lambda logits: S.logit_difference(logits, data.answer, data.wrong).mean()


@pytest.mark.parametrize("noising", [False, True], ids=["denoising", "noising"])
def test_patching_agrees_with_transformer_lens(ioi, noising):
    """Each patching reference equals transformer_lens.patching's function on the same inputs."""
    model, data, clean, corrupted = ioi
    tokens, source = (data.clean, corrupted) if noising else (data.corrupted, clean)
    args, metric = (model, tokens, source, data.answer, data.wrong), _metric(data)
    theirs = (tokens, source, metric)
    torch.testing.assert_close(S.patch_residual_stream(*args), patching.get_act_patch_resid_pre(model, *theirs),
                               atol=1e-5, rtol=1e-5)
    attn, mlp = S.patch_layer_outputs(*args)
    torch.testing.assert_close(attn, patching.get_act_patch_attn_out(model, *theirs), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mlp, patching.get_act_patch_mlp_out(model, *theirs), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(S.patch_head_outputs(*args),
                               patching.get_act_patch_attn_head_out_all_pos(model, *theirs), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(S.patch_head_outputs_by_position(*args),
                               patching.get_act_patch_attn_head_out_by_pos(model, *theirs), atol=1e-5, rtol=1e-5)


def test_denoising_the_one_changed_embedding_gives_the_clean_run(ioi):
    """The prompts differ at one position, so its layer-0 residual state is the whole difference:
    denoising it gives the clean logit difference, noising it the corrupted one."""
    model, data, clean, corrupted = ioi
    metric = _metric(data)
    with torch.no_grad():
        clean_ld, corrupted_ld = metric(model(data.clean)), metric(model(data.corrupted))
    changed = U.changed_mask(data)
    pos = int(changed[0].nonzero()[0])
    assert bool((changed.sum(1) == 1).all()) and bool(changed[:, pos].all())
    denoised = S.patch_residual_stream(model, data.corrupted, clean, data.answer, data.wrong)
    noised = S.patch_residual_stream(model, data.clean, corrupted, data.answer, data.wrong)
    torch.testing.assert_close(denoised[0, pos], clean_ld, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(noised[0, pos], corrupted_ld, atol=1e-4, rtol=1e-4)
    others = [p for p in range(data.clean.shape[1]) if p != pos]
    torch.testing.assert_close(denoised[0, others], corrupted_ld.expand(len(others)), atol=1e-4, rtol=1e-4)
    assert abs(float(S.normalised_metric(denoised[0, pos], clean_ld, corrupted_ld)) - 1) < 1e-4


def test_path_to_the_logits_adds_the_senders_change_to_the_final_stream(ioi):
    """With everything else frozen, the final residual stream is the plain run's plus the sender's
    change (z_source - z_plain) @ W_O; its logits give the same logit difference."""
    model, data, clean, corrupted = ioi
    layer, head, last = 1, model.cfg.n_heads - 1, model.cfg.n_layers - 1
    z = f"blocks.{layer}.attn.hook_z"
    delta = (clean[z][:, :, head] - corrupted[z][:, :, head]) @ model.W_O[layer, head]
    with torch.no_grad():
        logits = model.run_with_hooks(data.corrupted, fwd_hooks=[(f"blocks.{last}.hook_resid_post",
                                                                  lambda resid, hook: resid + delta)])
    ours = S.path_patch(model, data.corrupted, clean, (layer, head), None, "q", data.answer, data.wrong)
    torch.testing.assert_close(ours, _metric(data)(logits), atol=1e-4, rtol=1e-4)


@pytest.mark.tl4
@pytest.mark.parametrize("component", ["q", "k", "v"])
def test_path_patch_agrees_with_transformer_lens_direct_path(ioi, component):
    """TL 4's get_act_patch_direct_path adds the sender's change to one receiver's input alone:
    the same edge our frozen run isolates."""
    model, data, clean, corrupted = ioi
    sender = (0, 1)
    theirs = patching.get_act_patch_direct_path(model, data.corrupted, clean, corrupted, _metric(data), *sender,
                                                component=component, verbose=False)
    for layer in range(1, model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            ours = S.path_patch(model, data.corrupted, clean, sender, (layer, head), component, data.answer, data.wrong)
            torch.testing.assert_close(ours, theirs[layer, head], atol=1e-4, rtol=1e-4)


def test_causal_tracing_identities():
    """Without noise every restored run is the clean run; with noise, restoring the subject's
    embedding (layer 0) undoes all of it, and restoring a position before the subject nothing."""
    model = check_model()
    data = U.facts_data(model, ["Germany", "Japan", "Peru"])
    mask = U.changed_mask(data)
    with torch.no_grad():
        clean_p = model(data.clean)[:, -1].softmax(-1).gather(-1, data.answer[:, None]).mean()
    zero = torch.zeros(*data.clean.shape, model.cfg.d_model)
    torch.testing.assert_close(S.causal_tracing(model, data.clean, mask, zero, data.answer),
                               clean_p.expand(model.cfg.n_layers, data.clean.shape[1]), atol=1e-5, rtol=1e-4)
    noise = torch.randn(zero.shape, generator=torch.Generator().manual_seed(0)) * 2
    traced = S.causal_tracing(model, data.clean, mask, noise, data.answer)
    subject = int(mask[0].nonzero()[0])
    torch.testing.assert_close(traced[0, subject], clean_p, atol=1e-5, rtol=1e-4)
    assert abs(float(traced[0, 1] - clean_p)) > 1e-3, "the noise should change the answer's probability"
    torch.testing.assert_close(traced[:, 1], traced[0, 1].expand(model.cfg.n_layers), atol=1e-5, rtol=1e-4)


def test_datasets_differ_only_where_intended():
    model = check_model()
    for corruption, role in (("S", "S"), ("IO", "IO")):
        data = U.ioi_data(model, 8, corruption=corruption)
        changed = U.changed_mask(data)
        for row, prompt in enumerate(data.prompts):
            words = [model.to_string(t).strip() for t in data.clean[row, changed[row]]]
            assert words == [prompt.fields[role]], (corruption, words, prompt.prompt)
        assert data.answer.tolist() == [U.single_token(model, p.answer) for p in data.prompts]
    gt, start = U.greater_than_data(model, 6)
    years = U.year_tokens(model)
    assert bool((gt.clean[:, 8] == years[start]).all()) and bool((gt.corrupted[:, 8] == years[1]).all())
    germany = U.one_fact_data(model, "Germany")
    assert len({tuple(r) for r in germany.clean.tolist()}) == 1 and len(germany.clean) > 40
    assert model.to_string(germany.answer[:1]).strip() == "Berlin"


def test_misaligned_pairs_are_refused():
    model = check_model()
    with pytest.raises(ValueError, match="does not align"):
        U.aligned_tokens(model, ["The capital of Germany is"], ["The capital of the United Kingdom is"], ["Germany"])
    with pytest.raises(ValueError, match="differ at positions"):
        U.aligned_tokens(model, ["The capital of Germany is"], ["The city of France is"], ["Germany"])
    with pytest.raises(ValueError, match="does not align"):
        U.aligned_tokens(model, ["The capital of Germany is", "Germany is big"], ["The capital of France is", "Spain is big"],
                         ["Germany", "Germany"])


@pytest.mark.parametrize("exercise", PART_1)
def test_checks_on_a_second_model(second_model, exercise):
    assert second_model.cfg.n_heads == 6 and second_model.cfg.d_model == 48
    assert_checks_hold(getattr(S, exercise), exercise, WRONG[exercise])
