"""Checks for chapter 05: sparse autoencoders.

SAE parameters are a dict of tensors with SAELens's names and shapes: W_enc [d_in, d_sae],
W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in]. Public checks draw their inputs from fixed
seeds; hidden checks draw fresh ones from torch's global generator, which the grader seeds for
each submission and check. The checks that read the language model (encode_relu on real
activations, feature_logit_effects, clamp_feature) take their sizes from it.
"""
import torch

from autograder.core import check_model, checks, expect, expect_close, expect_tensor


def _gen(seed: int | None) -> torch.Generator | None:
    """A generator seeded with ``seed``; None (torch's global generator) for fresh draws."""
    return None if seed is None else torch.Generator().manual_seed(seed)


def _number(value, what: str = "the output") -> torch.Tensor:
    """A number (a Python float or a one-element tensor) as a float64 tensor, for expect_close."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.detach().double().reshape(())
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"{what} should be a number, got {type(value).__name__}")
    return torch.tensor(float(value), dtype=torch.float64)


def _params(d_in: int, d_sae: int, seed: int | None) -> dict[str, torch.Tensor]:
    """Random SAE parameters: decoder rows of unequal norms, a far-off b_dec, biases that switch
    some latents off, so that each convention (b_dec, the ReLU, decoder norms) changes the output."""
    g = _gen(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g) * (0.3 + 2 * torch.rand(d_sae, 1, generator=g))
    return {"W_enc": torch.randn(d_in, d_sae, generator=g) / d_in ** 0.5, "W_dec": W_dec,
            "b_enc": torch.randn(d_sae, generator=g) * 0.5 - 0.2, "b_dec": torch.randn(d_in, generator=g) * 2}


def _fresh_size(low: int, high: int) -> int:
    return int(torch.randint(low, high, ()))


def _resid(seed: int | None, layer: int = 1) -> torch.Tensor:
    """The check model's residual stream after ``layer`` on 16 random tokens: [1, 16, d_model]."""
    model = check_model()
    tokens = torch.randint(model.cfg.d_vocab, (1, 16), generator=_gen(seed))
    name = f"blocks.{min(layer, model.cfg.n_layers - 1)}.hook_resid_post"
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=name)
    return cache[name]


# --- encode_relu --------------------------------------------------------------------------------

@checks("encode_relu")
def check_batched_input_far_from_b_dec(impl, ref):
    """Inputs of shape [2, 3, d_in] around a large b_dec."""
    params = _params(6, 16, 0)
    x = torch.randn(2, 3, 6, generator=_gen(1)) + params["b_dec"]
    expect_close(impl(x, params), ref(x, params), atol=1e-5,
                 hint="SAELens's standard SAE subtracts b_dec from the input first (apply_b_dec_to_input): "
                      "relu((x - b_dec) @ W_enc + b_enc); did you forget to subtract b_dec, or the ReLU?")


@checks("encode_relu")
def check_on_the_model_residual_stream(impl, ref):
    """The check model's residual stream, encoded by a random SAE of its width."""
    x = _resid(0)
    params = _params(x.shape[-1], 4 * x.shape[-1], 2)
    expect_close(impl(x, params), ref(x, params), atol=1e-4, rtol=1e-4,
                 hint="works on any leading shape: [..., d_in] @ W_enc gives [..., d_sae]")


@checks("encode_relu", hidden=True)
def check_fresh_params(impl, ref):
    """Fresh sizes and parameters."""
    d_in, d_sae = _fresh_size(3, 20), _fresh_size(4, 60)
    params = _params(d_in, d_sae, None)
    x = torch.randn(_fresh_size(1, 9), d_in) * 3
    expect_close(impl(x, params), ref(x, params), atol=1e-5, hint="relu((x - b_dec) @ W_enc + b_enc)")


# --- decode -------------------------------------------------------------------------------------

@checks("decode")
def check_adds_b_dec(impl, ref):
    """Non-negative features of shape [2, 4, d_sae] decoded through W_dec plus b_dec."""
    params = _params(5, 12, 0)
    features = torch.randn(2, 4, 12, generator=_gen(1)).relu()
    expect_close(impl(features, params), ref(features, params), atol=1e-5,
                 hint="features @ W_dec + b_dec (W_dec is [d_sae, d_in]: each row is a latent's direction)")


@checks("decode", hidden=True)
def check_fresh_features(impl, ref):
    """Fresh sizes and features."""
    d_in, d_sae = _fresh_size(3, 20), _fresh_size(4, 60)
    params, features = _params(d_in, d_sae, None), torch.rand(_fresh_size(1, 9), d_sae) * 2
    expect_close(impl(features, params), ref(features, params), atol=1e-5, hint="features @ W_dec + b_dec")


# --- sae_loss -----------------------------------------------------------------------------------

def _loss_pair(out, ref_out, hint_mse: str, hint_l1: str) -> None:
    expect(isinstance(out, (tuple, list)) and len(out) == 2, "return a tuple (mse, l1)")
    expect_close(_number(out[0], "mse"), _number(ref_out[0]), atol=1e-4, rtol=1e-4, what="mse", hint=hint_mse)
    expect_close(_number(out[1], "l1"), _number(ref_out[1]), atol=1e-4, rtol=1e-4, what="l1", hint=hint_l1)


@checks("sae_loss")
def check_decoder_norms_and_reductions(impl, ref):
    """Decoder rows of unequal norms, 10 tokens, L1 coefficient 0.3."""
    params = _params(6, 16, 0)
    x = torch.randn(10, 6, generator=_gen(1)) * 2 + params["b_dec"]
    _loss_pair(impl(x, params, 0.3), ref(x, params, 0.3),
               "SAELens sums the squared error over d_in and averages over tokens (not a mean over every element)",
               "SAELens weights each activation by its decoder row's norm, sums over latents, averages over "
               "tokens and multiplies by l1_coefficient: was the L1 not weighted by decoder norms?")


@checks("sae_loss", hidden=True)
def check_fresh_loss(impl, ref):
    """Fresh parameters, inputs and coefficient."""
    d_in, d_sae = _fresh_size(3, 16), _fresh_size(4, 40)
    params, coefficient = _params(d_in, d_sae, None), float(torch.rand(()) * 2)
    x = torch.randn(_fresh_size(2, 30), d_in) * 2
    _loss_pair(impl(x, params, coefficient), ref(x, params, coefficient),
               "mse: squared error summed over d_in, mean over tokens", "l1: coefficient x mean over tokens of "
               "sum_i f_i ||W_dec[i]||")


# --- normalise_decoder --------------------------------------------------------------------------

@checks("normalise_decoder")
def check_unit_rows(impl, ref):
    """A [d_sae, d_in] decoder with rows of different norms: every row becomes a unit vector."""
    W_dec = _params(5, 9, 0)["W_dec"]
    out = expect_tensor(impl(W_dec))
    expect_close(out.norm(dim=1), torch.ones(9), atol=1e-5, what="the row norms",
                 hint="normalise each row (a latent's direction, dim=1), not each column")
    expect_close(out, ref(W_dec), atol=1e-5, hint="W_dec / W_dec.norm(dim=1, keepdim=True)")


@checks("normalise_decoder", hidden=True)
def check_fresh_decoder(impl, ref):
    """A fresh decoder."""
    W_dec = _params(_fresh_size(3, 30), _fresh_size(3, 30), None)["W_dec"]
    expect_close(expect_tensor(impl(W_dec)), ref(W_dec), atol=1e-5, hint="unit-norm rows")


# --- mean_max_cosine and matched_recovery -------------------------------------------------------

def _directions(n_learned: int, n_true: int, d: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """True directions and learned ones: noisy, rescaled copies of some true ones, some sign-flipped,
    two true directions served by one learned direction, and a few spurious learned ones."""
    g = _gen(seed)
    true = torch.randn(n_true, d, generator=g)
    true = true / true.norm(dim=1, keepdim=True)
    picks = torch.randperm(n_true, generator=g)[: max(1, n_learned - 2)]
    learned = true[picks] + 0.3 * torch.randn(len(picks), d, generator=g)
    learned[0] = true[picks[0]] + 0.8 * true[picks[1 % len(picks)]]  # one direction between two true ones
    learned[-1] = -learned[-1]
    learned = torch.cat([learned, torch.randn(n_learned - len(picks), d, generator=g)])
    return learned * (0.5 + 3 * torch.rand(n_learned, 1, generator=g)), true


@checks("mean_max_cosine")
def check_uneven_norms_and_counts(impl, ref):
    """12 learned directions of any norm against 8 true ones."""
    learned, true = _directions(12, 8, 6, 0)
    expect_close(_number(impl(learned, true)), _number(ref(learned, true)), atol=1e-4,
                 hint="normalise both sets of rows, take the cosine matrix, for each TRUE direction the best "
                      "learned one (max over the learned axis), then average over the true directions")


@checks("mean_max_cosine", hidden=True)
def check_fresh_directions(impl, ref):
    """Fresh directions."""
    learned, true = _directions(_fresh_size(5, 30), _fresh_size(3, 20), _fresh_size(4, 16), None)
    expect_close(_number(impl(learned, true)), _number(ref(learned, true)), atol=1e-4,
                 hint="mean over true directions of the best cosine with any learned direction")


@checks("matched_recovery")
def check_one_to_one(impl, ref):
    """One learned direction is the best match of two true ones: a matching may use it once."""
    learned, true = _directions(9, 6, 5, 0)
    expect_close(_number(impl(learned, true)), _number(ref(learned, true)), atol=1e-4,
                 hint="scipy.optimize.linear_sum_assignment on the cosine matrix with maximize=True pairs each "
                      "true direction with a different learned one; a greedy best match may reuse one")


@checks("matched_recovery", hidden=True)
def check_fresh_matching(impl, ref):
    """Fresh directions (as many or more learned than true)."""
    n_true = _fresh_size(3, 15)
    learned, true = _directions(n_true + _fresh_size(0, 10), n_true, _fresh_size(4, 16), None)
    expect_close(_number(impl(learned, true)), _number(ref(learned, true)), atol=1e-4,
                 hint="Hungarian matching of unit rows, mean cosine of the matched pairs")


# --- encode_topk and encode_batch_topk ----------------------------------------------------------

def _negative_biased(d_in: int, d_sae: int, seed: int | None) -> dict[str, torch.Tensor]:
    """Parameters whose pre-activations are mostly negative, so some tokens have fewer than k
    positive ones."""
    params = _params(d_in, d_sae, seed)
    return {**params, "b_enc": params["b_enc"] - 1.5}


@checks("encode_topk")
def check_per_token_with_few_positive(impl, ref):
    """k=3 per token, where some tokens have fewer than 3 positive pre-activations."""
    params = _negative_biased(6, 20, 0)
    x = torch.randn(2, 5, 6, generator=_gen(1)) * 2 + params["b_dec"]
    out = expect_tensor(impl(x, params, 3))
    expect(bool(((out != 0).sum(-1) <= 3).all()), "some token keeps more than k latents: keep the k largest "
           "pre-activations of each token (topk over the last dimension), not k over the batch")
    expect_close(out, ref(x, params, 3), atol=1e-5,
                 hint="topk of the pre-activations (x - b_dec) @ W_enc + b_enc over the last dim, ReLU the values "
                      "kept (a negative one becomes 0), scatter them into zeros")


@checks("encode_topk", hidden=True)
def check_fresh_topk(impl, ref):
    """Fresh parameters, inputs and k."""
    d_in, d_sae = _fresh_size(3, 16), _fresh_size(8, 60)
    params, k = _negative_biased(d_in, d_sae, None), _fresh_size(1, 8)
    x = torch.randn(_fresh_size(1, 12), d_in) * 2
    expect_close(expect_tensor(impl(x, params, k)), ref(x, params, k), atol=1e-5, hint="top-k per token, then ReLU")


@checks("encode_batch_topk")
def check_k_times_batch_over_the_batch(impl, ref):
    """8 tokens, k=2: the 16 largest ReLU'd pre-activations of the whole batch, unevenly spread."""
    params = _params(6, 20, 0)
    x = torch.randn(8, 6, generator=_gen(1)) * torch.linspace(0.2, 3, 8)[:, None] + params["b_dec"]
    out = expect_tensor(impl(x, params, 2))
    expect(int((out != 0).sum()) <= 16, "more than k * batch latents are active: keep k * n_tokens in total")
    expect_close(out, ref(x, params, 2), atol=1e-5,
                 hint="BatchTopK keeps the k * n_tokens largest ReLU'd pre-activations over the whole batch "
                      "(flatten, topk, scatter back), so a token may keep more or fewer than k: was it top-k per "
                      "token instead of per batch?")


@checks("encode_batch_topk", hidden=True)
def check_fresh_batch_topk(impl, ref):
    """Fresh parameters, batch and k."""
    d_in, d_sae = _fresh_size(3, 16), _fresh_size(8, 60)
    params, k = _params(d_in, d_sae, None), _fresh_size(1, 6)
    x = torch.randn(_fresh_size(2, 12), d_in) * (0.2 + 3 * torch.rand(1))
    expect_close(expect_tensor(impl(x, params, k)), ref(x, params, k), atol=1e-5,
                 hint="the k * n_tokens largest ReLU'd pre-activations over the batch")


# --- normalisation_factor -----------------------------------------------------------------------

def _activations(n: int, d: int, seed: int | None) -> torch.Tensor:
    """Activations with a mean offset and norms that vary from token to token."""
    g = _gen(seed)
    return (torch.randn(n, d, generator=g) + torch.randn(d, generator=g)) * (0.2 + 4 * torch.rand(n, 1, generator=g))


@checks("normalisation_factor")
def check_mean_norm_becomes_sqrt_d_in(impl, ref):
    """After scaling by the factor, the mean activation norm is sqrt(d_in)."""
    acts = _activations(50, 9, 0)
    factor = _number(impl(acts), "the factor")
    expect_close((acts * factor).norm(dim=-1).mean().double(), torch.tensor(3.0, dtype=torch.float64), atol=1e-4,
                 what="the mean norm of the scaled activations",
                 hint="SAELens's expected_average_only_in: factor = sqrt(d_in) / mean over tokens of ||x|| "
                      "(the mean of the norms, not the root of the mean squared norm)")
    expect_close(factor, _number(ref(acts)), atol=1e-5, rtol=1e-4)


@checks("normalisation_factor", hidden=True)
def check_fresh_activations(impl, ref):
    """Fresh activations."""
    acts = _activations(_fresh_size(5, 200), _fresh_size(2, 40), None)
    expect_close(_number(impl(acts)), _number(ref(acts)), atol=1e-5, rtol=1e-4, hint="sqrt(d_in) / mean ||x||")


# --- explained_variance -------------------------------------------------------------------------

def _reconstruction(n: int, d: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations far from the origin and a reconstruction with errors of different sizes."""
    g = _gen(seed)
    x = torch.randn(n, d, generator=g) + 5 * torch.randn(d, generator=g)
    return x, x + torch.randn(n, d, generator=g) * torch.rand(n, 1, generator=g)


@checks("explained_variance")
def check_variance_around_the_mean(impl, ref):
    """Activations with a large mean: the variance is measured around the mean."""
    x, x_hat = _reconstruction(12, 5, 0)
    expect_close(_number(impl(x, x_hat)), _number(ref(x, x_hat)), atol=1e-4,
                 hint="1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2, summed over every token and dimension; "
                      "explained variance around zero (sum ||x||^2) instead of the mean flatters activations far "
                      "from the origin, the bug SAELens fixed in 6.45.1")


@checks("explained_variance")
def check_mean_reconstruction_explains_nothing(impl, ref):
    """Predicting the mean activation for every token explains none of the variance."""
    x, _ = _reconstruction(20, 4, 1)
    expect_close(_number(impl(x, x.mean(0).expand_as(x))), _number(0.0), atol=1e-4,
                 hint="around the mean, the mean itself explains 0 of the variance; around zero it would look good")


@checks("explained_variance", hidden=True)
def check_fresh_reconstruction(impl, ref):
    """Fresh activations and reconstructions."""
    x, x_hat = _reconstruction(_fresh_size(3, 40), _fresh_size(2, 20), None)
    expect_close(_number(impl(x, x_hat)), _number(ref(x, x_hat)), atol=1e-4,
                 hint="pool over all tokens: one ratio, not a mean of per-token ratios")


# --- ce_loss_recovered --------------------------------------------------------------------------

@checks("ce_loss_recovered")
def check_score_between_the_baselines(impl, ref):
    """Clean 1.2, with the SAE 1.5, zero-ablated 6.9."""
    expect_close(_number(impl(1.2, 1.5, 6.9)), _number(ref(1.2, 1.5, 6.9)), atol=1e-5,
                 hint="(ablated - with SAE) / (ablated - clean): 1 when the SAE costs nothing, 0 when it is as bad "
                      "as the ablation")


@checks("ce_loss_recovered", hidden=True)
def check_fresh_losses(impl, ref):
    """Fresh losses, the SAE's sometimes worse than the ablation."""
    clean = float(torch.rand(()) * 3 + 0.5)
    ablated = clean + float(torch.rand(()) * 5 + 0.5)
    with_sae = clean + float(torch.rand(()) * (ablated - clean) * 1.3)
    expect_close(_number(impl(clean, with_sae, ablated)), _number(ref(clean, with_sae, ablated)), atol=1e-5,
                 hint="(ablated - with SAE) / (ablated - clean)")


# --- kl_divergence ------------------------------------------------------------------------------

@checks("kl_divergence")
def check_mean_over_tokens(impl, ref):
    """Logits of shape [2, 5, vocab]: KL(clean || other) averaged over every token."""
    g = _gen(0)
    clean, other = torch.randn(2, 5, 11, generator=g) * 2, torch.randn(2, 5, 11, generator=g)
    expect_close(_number(impl(clean, other)), _number(ref(clean, other)), atol=1e-4,
                 hint="sum_v p_clean (log p_clean - log p_other) at every token (log_softmax first), then the mean "
                      "over tokens; the clean distribution comes first, as in SAELens's kl_div_with_sae")


@checks("kl_divergence", hidden=True)
def check_fresh_logits(impl, ref):
    """Fresh shapes and logits."""
    shape = (_fresh_size(1, 4), _fresh_size(1, 8), _fresh_size(3, 30))
    clean, other = torch.randn(shape) * 3, torch.randn(shape)
    expect_close(_number(impl(clean, other)), _number(ref(clean, other)), atol=1e-4, hint="mean KL(clean || other)")


# --- feature_density ----------------------------------------------------------------------------

@checks("feature_density")
def check_fraction_of_tokens(impl, ref):
    """Features of shape [3, 4, d_sae] with a dead latent: the fraction of the 12 tokens each fires on."""
    features = torch.randn(3, 4, 7, generator=_gen(0)).relu() * 3
    features[..., 2] = 0
    expect_close(impl(features), ref(features), atol=1e-6,
                 hint="(features != 0), averaged over every token (all leading dimensions), as a float fraction: "
                      "not a count and not the mean activation")


@checks("feature_density", hidden=True)
def check_fresh_features_density(impl, ref):
    """Fresh features."""
    features = (torch.randn(_fresh_size(1, 30), _fresh_size(2, 40)) - 0.5).relu()
    expect_close(impl(features), ref(features), atol=1e-6, hint="fraction of tokens with a positive activation")


# --- top_activating_contexts --------------------------------------------------------------------

@checks("top_activating_contexts")
def check_largest_first_with_sequence_and_position(impl, ref):
    """A [6, 10] activation grid, k=5: several top activations in one sequence."""
    acts = torch.randn(6, 10, generator=_gen(0)).relu()
    acts[2, 7], acts[2, 3], acts[4, 0] = 9.0, 8.0, 7.0
    out = expect_tensor(impl(acts, 5))
    expect(out.shape == (5, 2), f"return a [k, 2] tensor of (sequence, position) rows, got {tuple(out.shape)}")
    expect(out[:3].tolist() == [[2, 7], [2, 3], [4, 0]], "the first rows should be the largest activations, in "
           "descending order, as (sequence, position): (2, 7), (2, 3), (4, 0)")
    expect_close(out, ref(acts, 5), hint="flatten, topk, then divmod by seq_len into (sequence, position)")


@checks("top_activating_contexts", hidden=True)
def check_fresh_grid(impl, ref):
    """A fresh grid and k."""
    acts = torch.rand(_fresh_size(2, 20), _fresh_size(3, 30))
    k = _fresh_size(1, 6)
    expect_close(expect_tensor(impl(acts, k)), ref(acts, k), hint="(sequence, position) of the k largest, descending")


# --- feature_logit_effects ----------------------------------------------------------------------

@checks("feature_logit_effects")
def check_through_the_model_unembedding(impl, ref):
    """A random SAE of the check model's width, through its unembedding."""
    W_U = check_model().W_U.detach()
    params = _params(W_U.shape[0], 2 * W_U.shape[0], 0)
    expect_close(impl(params, W_U, 5), ref(params, W_U, 5), atol=1e-4, rtol=1e-4,
                 hint="the feature's decoder row W_dec[feature] (what it writes) @ W_U; not W_enc's column (what it "
                      "reads), and without b_dec (shared by every feature)")


@checks("feature_logit_effects", hidden=True)
def check_fresh_feature(impl, ref):
    """A fresh SAE and feature."""
    W_U = check_model().W_U.detach()
    d_sae = _fresh_size(W_U.shape[0], 4 * W_U.shape[0])
    params, feature = _params(W_U.shape[0], d_sae, None), _fresh_size(0, d_sae)
    expect_close(impl(params, W_U, feature), ref(params, W_U, feature), atol=1e-4, rtol=1e-4, hint="W_dec[feature] @ W_U")


# --- monosemanticity ----------------------------------------------------------------------------

@checks("monosemanticity")
def check_most_common_and_its_share(impl, ref):
    """Ten labels: 'country' six times."""
    labels = ["country", "year", "country", "other", "country", "capital", "country", "country", "year", "country"]
    out = impl(labels)
    expect(isinstance(out, (tuple, list)) and len(out) == 2, "return a tuple (category, share)")
    expected = ref(labels)
    expect(out[0] == expected[0], f"the most common category is {expected[0]!r}, got {out[0]!r}")
    expect_close(_number(out[1], "the share"), _number(expected[1]), atol=1e-6,
                 hint="the share is its count divided by the number of labels (every label counts)")


@checks("monosemanticity", hidden=True)
def check_fresh_labels(impl, ref):
    """Fresh labels with one clear winner."""
    pool = ["country", "capital", "person name", "year", "number", "object", "other"]
    n = _fresh_size(5, 30)
    labels = [pool[int(i)] for i in torch.randint(len(pool), (n,))] + [pool[0]] * (n // 2 + 1)
    labels = [labels[int(i)] for i in torch.randperm(len(labels))]
    out, expected = impl(labels), ref(labels)
    expect(isinstance(out, (tuple, list)) and len(out) == 2 and out[0] == expected[0],
           f"the most common category is {expected[0]!r}")
    expect_close(_number(out[1], "the share"), _number(expected[1]), atol=1e-6, hint="count / len(categories)")


# --- clamp_feature ------------------------------------------------------------------------------

def _clamp_case(seed: int | None):
    """The check model's residual stream on random tokens (fresh ones for seed None), and a random SAE
    three times its width."""
    x = _resid(seed, layer=2)
    params = _params(x.shape[-1], 3 * x.shape[-1], seed)
    return x, params


@checks("clamp_feature")
def check_with_the_error_term(impl, ref):
    """The check model's residual stream, feature 3 pinned at 10, the SAE's error added back."""
    x, params = _clamp_case(0)
    expect_close(impl(x, params, 3, 10.0, True), ref(x, params, 3, 10.0, True), atol=1e-4, rtol=1e-4,
                 hint="encode, set the feature to the value at every position, decode, then add the error of the "
                      "UNclamped reconstruction, x - decode(encode(x)); so the result is x plus value minus the "
                      "feature's own activation, times its decoder row")


@checks("clamp_feature")
def check_without_the_error_term(impl, ref):
    """The same without the error term: the SAE's reconstruction with the feature pinned."""
    x, params = _clamp_case(1)
    expect_close(impl(x, params, 0, 4.0, False), ref(x, params, 0, 4.0, False), atol=1e-4, rtol=1e-4,
                 hint="without the error term, return decode of the clamped features alone")


@checks("clamp_feature", hidden=True)
def check_fresh_clamp(impl, ref):
    """A fresh SAE, feature, value and flag."""
    x, params = _clamp_case(None)
    feature, value = _fresh_size(0, params["W_dec"].shape[0]), float(torch.rand(()) * 20)
    include = bool(torch.rand(()) < 0.5)
    expect_close(impl(x, params, feature, value, include), ref(x, params, feature, value, include), atol=1e-4,
                 rtol=1e-4, hint="pin the feature everywhere, decode, and add x - x_hat when include_error")
