"""Chapter 05's SAE library: the on-disk format, the toy ground truth, training, activations, splicing.

Trained with the chapter's references, as the learner's own functions would be.
"""
import pytest
import torch

from solutions.ch05_sparse_autoencoders import decode, encode_relu, matched_recovery, mean_max_cosine, sae_loss
from utils import ch05_sae as sae


def random_params(d_in: int = 8, d_sae: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in, generator=g),
            "b_enc": torch.randn(d_sae, generator=g), "b_dec": torch.randn(d_in, generator=g)}


def train_toy(data, d_sae: int, l1: float, steps: int = 500, seed: int = 0, loss=None):
    loss = loss or (lambda x, p: sae_loss(x, p, l1))
    return sae.train_sae(data, encode_relu, decode, loss, d_sae, steps, batch_size=256, lr=1e-2, seed=seed,
                         resample_every=100, progress=False)


@pytest.fixture(scope="module")
def toy():
    """32 true directions in 16 dimensions, about 2 active per sample."""
    return sae.toy_dataset(32, 16, 8192, seed=0, mean_active=2.0)


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_save_load_round_trip(tmp_path):
    params = random_params()
    cfg = {"architecture": "topk", "k": 4, "metadata": {"model_name": "world-neox", "hook_name": "blocks.2.hook_resid_pre"}}
    sae.save_sae(tmp_path / "x", params, cfg)
    loaded, loaded_cfg = sae.load_sae(tmp_path / "x")
    assert loaded.keys() == params.keys()
    for name in params:
        assert torch.equal(loaded[name], params[name]), name
    assert (loaded_cfg["d_in"], loaded_cfg["d_sae"], loaded_cfg["k"], loaded_cfg["architecture"]) == (8, 32, 4, "topk")
    assert loaded_cfg["apply_b_dec_to_input"] is True and loaded_cfg["normalize_activations"] == "none"
    assert loaded_cfg["metadata"]["hook_name"] == "blocks.2.hook_resid_pre"
    assert loaded_cfg["metadata"]["sae_lens_version"].startswith("6.")


def test_bad_sae_input_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SAE at"):
        sae.load_sae(tmp_path / "nothing")
    with pytest.raises(ValueError, match="b_dec"):
        sae.save_sae(tmp_path / "y", {k: v for k, v in random_params().items() if k != "b_dec"}, {})
    with pytest.raises(ValueError, match=r"\[n_tokens, d_in\]"):
        sae.train_sae(torch.zeros(2, 3, 4), encode_relu, decode, lambda x, p: x.sum(), 8, 1, 2, 1e-3)


def test_toy_dataset_is_sparse_and_built_from_its_directions(toy):
    data, true = toy
    assert data.shape == (8192, 16) and true.shape == (32, 16)
    assert torch.allclose(true.norm(dim=-1), torch.ones(32))
    coefficients = torch.linalg.lstsq(true.T, data.T).solution  # 32 > 16: one of many solutions
    assert torch.allclose(coefficients.T @ true, data, atol=1e-4)
    again, _ = sae.toy_dataset(32, 16, 8192, seed=0, mean_active=2.0)
    assert torch.equal(again, data)


def test_fresh_sae_does_not_start_on_the_true_directions(toy):
    """The toy data and the initial decoder share a seed but not a random stream."""
    assert matched_recovery(sae.init_params(16, 64, seed=0)["W_dec"], toy[1]) < 0.7


def test_toy_sae_recovers_the_true_features(toy, one_thread):
    params, log = train_toy(toy[0], d_sae=64, l1=0.3, steps=800)
    assert matched_recovery(params["W_dec"], toy[1]) > 0.95
    assert mean_max_cosine(params["W_dec"], toy[1]) > 0.95
    assert log["l0"][-1] < 6 and log["step"][-1] == 800
    assert torch.allclose(params["W_dec"].norm(dim=-1), torch.ones(64), atol=1e-5)


def test_too_small_a_dictionary_cannot_recover_them(toy, one_thread):
    params, _ = train_toy(toy[0], d_sae=16, l1=0.3)
    assert matched_recovery(params["W_dec"], toy[1]) < 0.6


def test_training_is_deterministic_for_a_seed(toy, one_thread):
    a, log_a = train_toy(toy[0], d_sae=32, l1=0.3, steps=150)
    b, log_b = train_toy(toy[0], d_sae=32, l1=0.3, steps=150)
    c, _ = train_toy(toy[0], d_sae=32, l1=0.3, steps=150, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a) and log_a == log_b
    assert not torch.equal(a["W_dec"], c["W_dec"])


def test_training_follows_the_loss_it_is_given(toy, one_thread):
    """A loss with no reconstruction term learns nothing about the data."""
    params, _ = train_toy(toy[0], d_sae=64, l1=0.3, loss=lambda x, p: sae_loss(x, p, 0.3)[1])
    assert matched_recovery(params["W_dec"], toy[1]) < 0.7
    constant = lambda x, p: sum(sae_loss(x, p, 0.3)) * 0 + 7.0  # noqa: E731
    _, log = sae.train_sae(toy[0], encode_relu, decode, constant, 16, 10, 32, 1e-3, log_every=5, progress=False)
    assert log["loss"] == [7.0, 7.0], "the logged loss is the given loss"


def test_the_log_measures_sparsity_with_the_encoder_it_is_given(toy, one_thread):
    dense = lambda x, p: encode_relu(x, p) + 1.0  # every feature always active  # noqa: E731
    _, log = sae.train_sae(toy[0], dense, decode, lambda x, p: sae_loss(x, p, 0.3), 24, 20, 64, 3e-3,
                           log_every=10, progress=False)
    assert log["l0"] == [24.0, 24.0] and log["dead_fraction"] == [0.0, 0.0]


def test_resampling_points_dead_features_at_badly_reconstructed_inputs(toy):
    data = toy[0]
    params = {k: v.requires_grad_() for k, v in sae.init_params(16, 64, seed=0, b_dec=data.mean(dim=0)).items()}
    with torch.no_grad():
        params["b_enc"][:10] = -100.0  # these ten never fire
    optimizer = torch.optim.Adam(params.values(), lr=1e-3)
    sum(sae_loss(data[:256], params, 0.3)).backward()
    optimizer.step()
    before = {k: v.detach().clone() for k, v in params.items()}
    dead = torch.arange(64) < 10
    assert sae.resample_dead(params, dead, data, encode_relu, decode, optimizer, torch.Generator().manual_seed(0)) == 10
    new_rows = params["W_dec"].detach()[:10]
    candidates = torch.nn.functional.normalize(data - params["b_dec"].detach(), dim=-1)
    assert (new_rows @ candidates.T).max(dim=1).values.min() > 1 - 1e-5, "each new row is a data point's direction"
    encoder = torch.nn.functional.normalize(params["W_enc"].detach()[:, :10].T, dim=-1)
    assert torch.allclose((encoder * new_rows).sum(dim=-1), torch.ones(10), atol=1e-5)
    assert (params["b_enc"].detach()[:10] == 0).all()
    assert torch.equal(params["W_dec"].detach()[10:], before["W_dec"][10:])
    assert torch.equal(params["W_enc"].detach()[:, 10:], before["W_enc"][:, 10:])
    assert (optimizer.state[params["W_dec"]]["exp_avg"][:10] == 0).all()
    assert (optimizer.state[params["W_enc"]]["exp_avg_sq"][:, :10] == 0).all()
    assert (encode_relu(data, params)[:, :10] > 0).any(dim=0).all(), "the resampled features fire again"


def test_folding_the_scale_changes_no_feature():
    params, x = random_params(), torch.randn(5, 8)
    folded = sae.fold_scaling(params, 3.0)
    assert torch.allclose(encode_relu(x, folded), encode_relu(3.0 * x, params), atol=1e-5)
    features = encode_relu(x, folded)
    assert torch.allclose(decode(features, folded), decode(features, params) / 3.0, atol=1e-5)


@pytest.fixture(scope="module")
def model():
    from utils.models import cached_model

    return cached_model()


def test_collected_activations_are_the_hooks_values_without_bos(model):
    store = sae.collect_activations(model, "blocks.2.hook_resid_pre", n_tokens=300, seed=3, batch_size=4)
    assert store.acts.shape == (300, model.cfg.d_model) and store.index.shape == (300, 2)
    assert (store.index[:, 1] > 0).all(), "BOS rows must be skipped"
    _, cache = model.run_with_cache(store.tokens, names_filter="blocks.2.hook_resid_pre")
    expected = cache["blocks.2.hook_resid_pre"][store.index[:, 0], store.index[:, 1]]
    assert torch.allclose(store.acts, expected, atol=1e-4)
    grid = store.by_position(store.acts[:, 0])
    assert grid.shape == store.tokens.shape and grid[store.index[7, 0], store.index[7, 1]] == store.acts[7, 0]


def test_world_documents_leave_out_random_repeats():
    """A random-repeat document has no sentence end; the model's training text holds some."""
    from utils.world import generate_text

    assert sum("." not in d for d in generate_text(200, seed=0)) > 5
    assert all("." in d for d in sae.world_documents(200, seed=0))


def test_splicing_the_identity_changes_nothing_and_keeps_bos(model):
    tokens = model.to_tokens(sae.world_documents(3, seed=1), truncate=True)
    clean = sae.run_with_replacement(model, tokens, "blocks.2.hook_resid_pre", None)
    same = sae.run_with_replacement(model, tokens, "blocks.2.hook_resid_pre", lambda a: a.clone())
    assert torch.allclose(clean, same, atol=1e-4)
    zeroed = sae.run_with_replacement(model, tokens, "blocks.2.hook_resid_pre", torch.zeros_like)
    assert torch.allclose(zeroed[:, 0], clean[:, 0], atol=1e-4), "BOS keeps its own activation"
    assert (zeroed[:, 1:] - clean[:, 1:]).abs().max() > 1.0
    everywhere = sae.run_with_replacement(model, tokens, "blocks.2.hook_resid_pre", torch.zeros_like, everywhere=True)
    assert (everywhere[:, 0] - clean[:, 0]).abs().max() > 1.0
    losses = sae.next_token_losses(clean, tokens)
    expected = torch.nn.functional.cross_entropy(clean[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    assert torch.allclose(losses.flatten(), expected, atol=1e-5)


def test_splice_metrics_average_over_the_scored_tokens(model):
    from solutions.ch05_sparse_autoencoders import kl_divergence

    tokens = model.to_tokens(sae.world_documents(5, seed=2), truncate=True)
    runs = sae.splice_metrics(model, tokens, "blocks.2.hook_resid_pre",
                              {"clean": (None, False), "zero": (torch.zeros_like, True)}, kl_divergence, batch_size=2)
    with torch.no_grad():
        clean = model(tokens)
    assert runs["clean"]["kl"] == pytest.approx(0.0, abs=1e-6)
    targets_real = tokens[:, 2:] != model.tokenizer.pad_token_id
    expected = sae.next_token_losses(clean, tokens)[:, 1:][targets_real].mean()  # no prediction from BOS
    assert runs["clean"]["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert runs["zero"]["loss"] > runs["clean"]["loss"] + 1.0 and runs["zero"]["kl"] > 1.0
