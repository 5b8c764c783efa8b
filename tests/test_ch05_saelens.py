"""Chapter 05 against SAELens itself: its loader reads the course's SAEs, and its encoders, its
training loss and its evaluation formulas give the numbers the chapter's references give.

SAELens pins TransformerLens < 4, so these run only in the TL 3.9 environment
(``./run test-tl3``; ``./run test`` deselects the ``saelens`` marker).
"""
import pytest
import torch

from solutions.ch05_sparse_autoencoders import (ce_loss_recovered, decode, encode_batch_topk, encode_relu, encode_topk,
                                                explained_variance, feature_density, kl_divergence,
                                                normalisation_factor, sae_loss)
from utils import ch05_sae

pytestmark = pytest.mark.saelens  # SAELens is imported inside the tests: the main environment lacks it

SHIPPED = "world-neox-resid2-relu"
HOOK = "blocks.2.hook_resid_pre"
BATCH = 8


@pytest.fixture(scope="module")
def model():
    from utils.models import cached_model

    return cached_model("world-neox")


@pytest.fixture(scope="module")
def shipped():
    from sae_lens import SAE

    params, cfg = ch05_sae.load_sae(SHIPPED)
    return params, cfg, SAE.load_from_disk(ch05_sae.SAES_DIR / SHIPPED)


@pytest.fixture(scope="module")
def tokens(model):
    """Three batches of held-out documents, each filling the context (SAELens scores padding)."""
    tokens = model.to_tokens(ch05_sae.world_documents(6 * BATCH, seed=5, split="test"), truncate=True)
    full = tokens[(tokens != model.tokenizer.pad_token_id).all(dim=1)]
    assert len(full) >= 3 * BATCH
    return full[:3 * BATCH]


class AsHookedModel:
    """The course's TransformerBridge, answering the calls SAELens's evals make of the model they are given.

    The per-token loss is torch's cross-entropy, so SAELens sees nothing of the course's helpers.
    """
    def __init__(self, model):
        self.model = model

    @staticmethod
    def _both(logits, tokens):
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
        return logits, loss

    def __call__(self, tokens, return_type="both", loss_per_token=True, **kwargs):
        return self._both(self.model(tokens), tokens)

    def run_with_hooks(self, tokens, return_type="both", fwd_hooks=(), loss_per_token=True, **kwargs):
        return self._both(self.model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks)), tokens)

    def run_with_cache(self, tokens, names_filter=None, **kwargs):
        return self.model.run_with_cache(tokens, names_filter=names_filter)


class TokenBatches:
    """SAELens's activation store, as far as its evals use it: consecutive batches of tokens."""
    def __init__(self, tokens):
        self.tokens, self.start = tokens, 0

    def get_batch_tokens(self, n):
        batch = self.tokens[self.start:self.start + n]
        self.start += n
        return batch


def ignore(model) -> list[int]:
    return [model.tokenizer.bos_token_id, model.tokenizer.pad_token_id]


def test_saelens_loads_the_shipped_sae_and_encodes_as_the_references(shipped, tokens, model):
    params, cfg, loaded = shipped
    assert type(loaded).__name__ == "StandardSAE" and loaded.cfg.d_sae == cfg["d_sae"]
    assert loaded.cfg.metadata.hook_name == HOOK
    _, cache = model.run_with_cache(tokens[:BATCH], names_filter=HOOK)
    x = cache[HOOK]
    with torch.no_grad():
        features = loaded.encode(x)
        torch.testing.assert_close(features, encode_relu(x, params), rtol=0, atol=1e-6)
        torch.testing.assert_close(loaded.decode(features), decode(features, params), rtol=0, atol=1e-6)


def test_saelens_loads_a_saved_topk_sae_and_encodes_as_the_reference(tmp_path):
    from sae_lens import SAE
    from sae_lens.saes.batchtopk_sae import BatchTopK

    g = torch.Generator().manual_seed(0)
    params = {"W_enc": torch.randn(16, 64, generator=g), "W_dec": torch.randn(64, 16, generator=g),
              "b_enc": torch.randn(64, generator=g), "b_dec": torch.randn(16, generator=g)}
    ch05_sae.save_sae(tmp_path / "topk", params, {"architecture": "topk", "k": 5, "metadata": {"hook_name": HOOK}})
    loaded = SAE.load_from_disk(tmp_path / "topk")
    assert type(loaded).__name__ == "TopKSAE" and loaded.cfg.k == 5
    x = torch.randn(4, 7, 16, generator=g)
    with torch.no_grad():
        features = loaded.encode(x)
        torch.testing.assert_close(features, encode_topk(x, params, 5), rtol=0, atol=1e-5)
        torch.testing.assert_close(loaded.decode(features), decode(features, params), rtol=0, atol=1e-5)
        pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
        torch.testing.assert_close(BatchTopK(5)(pre), encode_batch_topk(x, params, 5), rtol=0, atol=1e-5)


def test_the_training_loss_is_saelens_standard_training_loss(shipped, tokens, model):
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig

    params = shipped[0]
    training = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=params["W_enc"].shape[0],
                                                             d_sae=params["W_enc"].shape[1], l1_coefficient=0.015))
    training.load_state_dict({k: v.clone() for k, v in params.items()})
    _, cache = model.run_with_cache(tokens[:BATCH], names_filter=HOOK)
    x = cache[HOOK][:, 1:].flatten(0, 1)
    step = TrainStepInput(sae_in=x, coefficients={"l1": 0.015}, dead_neuron_mask=None, n_training_steps=0,
                          is_logging_step=False)
    with torch.no_grad():
        losses = training.training_forward_pass(step).losses
    mse, l1 = sae_loss(x, params, 0.015)
    assert float(mse) == pytest.approx(float(losses["mse_loss"]), rel=1e-5)
    assert float(l1) == pytest.approx(float(losses["l1_loss"]), rel=1e-5)


def test_sparsity_and_variance_as_saelens_evals_measure_them(shipped, tokens, model):
    from sae_lens import evals
    from sae_lens.training.activation_scaler import ActivationScaler

    params, _, loaded = shipped
    metrics, per_feature = evals.get_sparsity_and_variance_metrics(
        loaded, AsHookedModel(model), TokenBatches(tokens), ActivationScaler(), n_batches=3,
        compute_l2_norms=False, compute_sparsity_metrics=True, compute_variance_metrics=True,
        compute_featurewise_density_statistics=True, eval_batch_size_prompts=BATCH, model_kwargs={},
        ignore_tokens=ignore(model))
    _, cache = model.run_with_cache(tokens, names_filter=HOOK)
    x = cache[HOOK][:, 1:].flatten(0, 1)  # BOS left out, as ignore_tokens does
    features = encode_relu(x, params)
    assert metrics["explained_variance"] == pytest.approx(explained_variance(x, decode(features, params)), abs=1e-5)
    assert metrics["l0"] == pytest.approx(float((features != 0).sum(dim=-1).float().mean()), rel=1e-6)
    torch.testing.assert_close(torch.tensor(per_feature["feature_density"]), feature_density(features))
    around_zero = 1 - (x - decode(features, params)).pow(2).sum(-1).mean() / x.pow(2).sum(-1).mean()
    assert abs(float(around_zero) - metrics["explained_variance"]) > 1e-3, "the contrast the chapter grades"


def test_ce_recovered_and_kl_score_as_saelens_evals_measure_them(shipped, tokens, model):
    from sae_lens import evals
    from sae_lens.training.activation_scaler import ActivationScaler

    params, _, loaded = shipped
    theirs = evals.get_downstream_reconstruction_metrics(
        loaded, AsHookedModel(model), TokenBatches(tokens), ActivationScaler(), compute_kl=True, compute_ce_loss=True,
        n_batches=3, eval_batch_size_prompts=BATCH, ignore_tokens=ignore(model))
    ours = ch05_sae.splice_metrics(model, tokens, HOOK, {
        "clean": (None, False), "sae": (ch05_sae.sae_replacement(params, encode_relu, decode), False),
        "zero": (torch.zeros_like, True)}, kl_divergence, batch_size=BATCH)
    assert ours["clean"]["loss"] == pytest.approx(theirs["ce_loss_without_sae"], rel=1e-5)
    assert ours["sae"]["loss"] == pytest.approx(theirs["ce_loss_with_sae"], rel=1e-5)
    assert ours["zero"]["loss"] == pytest.approx(theirs["ce_loss_with_ablation"], rel=1e-5)
    assert ours["sae"]["kl"] == pytest.approx(theirs["kl_div_with_sae"], rel=1e-4)
    assert ours["zero"]["kl"] == pytest.approx(theirs["kl_div_with_ablation"], rel=1e-4)
    recovered = ce_loss_recovered(ours["clean"]["loss"], ours["sae"]["loss"], ours["zero"]["loss"])
    assert recovered == pytest.approx(theirs["ce_loss_score"], rel=1e-4)
    assert ce_loss_recovered(0.0, ours["sae"]["kl"], ours["zero"]["kl"]) == pytest.approx(theirs["kl_div_score"], rel=1e-4)


def test_the_normalisation_factor_is_saelens_scaling_factor(tokens, model):
    from sae_lens.training.activation_scaler import ActivationScaler

    _, cache = model.run_with_cache(tokens, names_filter=HOOK)
    batches = list(cache[HOOK][:, 1:].flatten(0, 1).split(63 * BATCH))
    scaler = ActivationScaler()
    scaler.estimate_scaling_factor(batches[0].shape[-1], iter(batches), n_batches_for_norm_estimate=len(batches))
    assert normalisation_factor(torch.cat(batches)) == pytest.approx(scaler.scaling_factor, rel=1e-5)
