"""pyvene and TransformerLens agree on chapter 03's residual-stream patching of the capital facts."""
import pytest
import torch
from transformer_lens import patching

from utils.ch03_pyvene import patch_residual_with_pyvene
from utils.models import cached_model, load_hf_model

TOLERANCE = 1e-4  # logits are ~10; float32 runs of the same weights through two code paths


@pytest.fixture(scope="module")
def facts():
    """Two capital prompts, patched from Germany into France and from Japan into Spain."""
    model = cached_model()
    clean = model.to_tokens(["The capital of Germany is", "The capital of Japan is"])
    corrupted = model.to_tokens(["The capital of France is", "The capital of Spain is"])
    answers = model.to_tokens([" Berlin", " Tokyo"], prepend_bos=False)[:, 0]
    wrong = model.to_tokens([" Paris", " Madrid"], prepend_bos=False)[:, 0]
    rows = torch.arange(2)

    def metric(logits):
        last = logits[:, -1]
        return (last[rows, answers] - last[rows, wrong]).mean()

    return model, clean, corrupted, metric


def test_pyvene_patching_equals_transformer_lens_at_every_layer_and_position(facts):
    model, clean, corrupted, metric = facts
    _, clean_cache = model.run_with_cache(clean)
    expected = patching.get_act_patch_resid_pre(model, corrupted, clean_cache, metric)
    got = patch_residual_with_pyvene(load_hf_model(), corrupted, clean, metric)
    assert got.shape == expected.shape == (model.cfg.n_layers, clean.shape[1])
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=0)
    # The experiment is not trivial: the country position carries the answer early on, the final one late.
    assert expected[0, 4] > 0 > expected[0, -1] and expected[-1, -1] > 0 > expected[-1, 4]


def test_misaligned_batches_are_refused(facts):
    model, clean, corrupted, metric = facts
    with pytest.raises(ValueError, match="position by position"):
        patch_residual_with_pyvene(load_hf_model(), corrupted[:, :-1], clean, metric)


def test_pyvene_repeats_the_chapters_ioi_patching_at_every_layer_and_position():
    """The notebook's replication: IOI denoising with the chapter's reference, then with pyvene."""
    from solutions.ch03_activation_patching import logit_difference, patch_residual_stream
    from utils.ch03_activation_patching import ioi_data

    model = cached_model()
    ioi = ioi_data(model, 8)
    _, clean_cache = model.run_with_cache(ioi.clean)
    expected = patch_residual_stream(model, ioi.corrupted, clean_cache, ioi.answer, ioi.wrong)
    got = patch_residual_with_pyvene(load_hf_model(), ioi.corrupted, ioi.clean,
                                     lambda logits: logit_difference(logits, ioi.answer, ioi.wrong).mean())
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=0)
