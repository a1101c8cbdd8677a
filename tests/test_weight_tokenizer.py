"""Weight tokenizer: layer-wise blocks, exact inverse, [-1, 1] range, symmetry in token space."""

from __future__ import annotations

import pytest
import torch

from t2wlib.core.sealed import load_sealed, save_sealed
from t2wlib.generator.tokenizer import WeightTokenizer, block_layout
from t2wlib.generator.tokenizers import fit_tokenizer, tokenizer_from_state
from t2wlib.heads.adapter import HeadSpec, head_logits, permute_hidden

SPEC = HeadSpec(12, 3, 7)  # P = 36 + 3 + 21 + 7 = 67


@pytest.fixture(scope="module")
def zoo():
    g = torch.Generator().manual_seed(0)
    scales = torch.linspace(0.1, 3.0, SPEC.num_params, dtype=torch.float64)
    return torch.randn(50, SPEC.num_params, generator=g, dtype=torch.float64) * scales + 0.5


def test_blocks_never_mix_layers():
    index = block_layout(SPEC, 8)
    # W1: 36 -> 5 blocks, b1: 3 -> 1, W2: 21 -> 3, b2: 7 -> 1
    assert index.shape == (10, 8)
    assert index[4].tolist() == [32, 33, 34, 35, -1, -1, -1, -1]  # W1's last block, padded
    assert index[5].tolist()[:4] == [36, 37, 38, -1]  # b1 starts a new block
    real = index[index >= 0]
    assert torch.equal(real, torch.arange(SPEC.num_params))


@pytest.mark.parametrize("mode", ["minmax", "standard"])
def test_decode_inverts_encode(zoo, mode):
    tok = WeightTokenizer.fit(zoo, SPEC, block_size=8, mode=mode)
    tokens = tok.encode(zoo)
    assert tokens.shape == (50, 10, 8) and (tokens[:, ~tok.mask] == 0).all()
    torch.testing.assert_close(tok.decode(tokens), zoo, rtol=0, atol=1e-12)
    f32 = tok.decode(tok.encode(zoo.float()))
    torch.testing.assert_close(f32, zoo.float(), rtol=1e-6, atol=1e-6)


def test_minmax_maps_the_fitted_zoo_into_minus_one_one(zoo):
    tokens = WeightTokenizer.fit(zoo, SPEC, 8).encode(zoo)
    real = tokens[:, WeightTokenizer.fit(zoo, SPEC, 8).mask]
    assert real.min() == pytest.approx(-1.0) and real.max() == pytest.approx(1.0)


def test_standard_mode_standardises_each_parameter(zoo):
    tok = WeightTokenizer.fit(zoo, SPEC, 8, mode="standard")
    real = tok.encode(zoo)[:, tok.mask]  # (T, P) in token order
    torch.testing.assert_close(real.mean(0), torch.zeros(SPEC.num_params, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(real.std(0), torch.ones(SPEC.num_params, dtype=torch.float64), atol=1e-12, rtol=0)


def test_permutation_in_token_space_matches_weight_space(zoo):
    tok = WeightTokenizer.fit(zoo, SPEC, 8)
    perm = torch.stack([torch.randperm(3, generator=torch.Generator().manual_seed(i)) for i in range(50)])
    permuted = tok.permute(tok.encode(zoo), perm)
    torch.testing.assert_close(tok.decode(permuted), permute_hidden(zoo, perm, SPEC), rtol=0, atol=1e-12)
    x, e = torch.randn(4, 12, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64)
    torch.testing.assert_close(head_logits(tok.decode(permuted), x, e, SPEC), head_logits(zoo, x, e, SPEC))
    # Linear part on a noise-like tensor: decode(x + eps) - decode(x) transforms like g.
    eps = torch.randn(50, 10, 8, dtype=torch.float64) * tok.mask
    moved = tok.decode(tok.permute(tok.encode(zoo) + eps, perm)) - tok.decode(permuted)
    torch.testing.assert_close(tok.decode(permuted + tok.permute(eps, perm, linear=True)) - tok.decode(permuted), moved)


def test_state_roundtrip_and_bad_input(zoo):
    tok = WeightTokenizer.fit(zoo, SPEC, 8)
    again = WeightTokenizer.from_state(tok.config(), tok.state_dict())
    assert torch.equal(again.encode(zoo), tok.encode(zoo))
    with pytest.raises(ValueError, match="unknown tokenizer mode"):
        WeightTokenizer.fit(zoo, SPEC, 8, mode="zscore")
    with pytest.raises(ValueError, match="fit needs"):
        WeightTokenizer.fit(zoo[:, :-1], SPEC, 8)
    with pytest.raises(ValueError, match="block_size"):
        block_layout(SPEC, 0)


# --- the compact token space (pca_tokenizer.py) ----------------------------------------------------

def test_compact_tokens_are_unit_variance_coordinates_and_exact_on_their_span(zoo):
    tok = fit_tokenizer(zoo, SPEC, 8, "pca", components=20)
    assert (tok.num_tokens, tok.block_size) == (3, 8) and int(tok.mask.sum()) == 20  # 20 values in 3 tokens of 8
    tokens = tok.encode(zoo)
    assert tokens.shape == (50, 3, 8) and torch.all(tokens[:, ~tok.mask] == 0)
    coords = tokens.flatten(1)[:, :20]
    torch.testing.assert_close(coords.std(0), torch.ones(20, dtype=torch.float64), rtol=0, atol=1e-6)  # float32 basis
    torch.testing.assert_close(coords.mean(0), torch.zeros(20, dtype=torch.float64), rtol=0, atol=1e-6)
    # decode is the projection on the top directions: exact for a head in their span, idempotent always
    projected = tok.decode(tokens)
    torch.testing.assert_close(tok.decode(tok.encode(projected)), projected, rtol=0, atol=1e-5)
    full = fit_tokenizer(zoo, SPEC, 8, "pca", components=49)  # T - 1 directions span the centred zoo
    torch.testing.assert_close(full.decode(full.encode(zoo)), zoo, rtol=0, atol=1e-4)
    # fewer directions lose variance, in order: the residual shrinks as K grows
    residual = [float(((fit_tokenizer(zoo, SPEC, 8, "pca", k).decode(fit_tokenizer(zoo, SPEC, 8, "pca", k).encode(zoo))
                        - zoo) ** 2).mean()) for k in (5, 20, 40)]
    assert residual[0] > residual[1] > residual[2]


def test_global_scale_keeps_the_zoos_proportions_and_the_same_projection(zoo, tmp_path):
    whitened, scaled = (fit_tokenizer(zoo, SPEC, 8, mode, components=20) for mode in ("pca", "pca-global"))
    coords = scaled.encode(zoo).flatten(1)[:, :20]
    spread = coords.std(0)
    # one divisor for all coordinates: their variances average 1 and fall with the component's rank
    assert abs(float(spread.pow(2).mean()) - 1) < 1e-5 and bool(torch.all(spread[:-1] >= spread[1:] - 1e-6))
    assert float(spread[0] / spread[-1]) > 1.5  # a whitened space would make this 1
    torch.testing.assert_close(coords, whitened.encode(zoo).flatten(1)[:, :20] * whitened.component_std / scaled.component_std)
    torch.testing.assert_close(scaled.decode(scaled.encode(zoo)), whitened.decode(whitened.encode(zoo)), rtol=0, atol=1e-5)
    again = tokenizer_from_state(scaled.config(), scaled.state_dict())
    assert again.mode == "pca-global" and torch.equal(again.encode(zoo), scaled.encode(zoo))
    one = fit_tokenizer(zoo, SPEC, 8, "pca-global", components=1)  # its state saves (a stride-0 vector would not)
    save_sealed(tmp_path / "one.safetensors", one.state_dict(), {})
    assert torch.equal(load_sealed(tmp_path / "one.safetensors", "tokenizer")[0]["component_std"], one.component_std)
    with pytest.raises(ValueError, match="unknown tokenizer mode 'pca-x'; allowed: minmax, standard, pca-global, pca"):
        tokenizer_from_state({**scaled.config(), "mode": "pca-x"}, scaled.state_dict())


def test_compact_tokens_state_permutation_and_bad_input(zoo):
    tok = fit_tokenizer(zoo, SPEC, 8, "pca", components=49)
    again = tokenizer_from_state(tok.config(), tok.state_dict())
    assert torch.equal(again.encode(zoo), tok.encode(zoo))
    # with all P = 67 directions kept (a zoo of more than P heads), g acts on tokens as on weights
    zoo = torch.cat([zoo, zoo * 1.5 - 0.2, zoo.flip(1)])  # 150 heads
    tok = fit_tokenizer(zoo, SPEC, 8, "pca", components=SPEC.num_params)
    perm = torch.stack([torch.randperm(3, generator=torch.Generator().manual_seed(i)) for i in range(150)])
    torch.testing.assert_close(tok.decode(tok.permute(tok.encode(zoo), perm)), permute_hidden(zoo, perm, SPEC),
                               rtol=0, atol=1e-3)
    eps = torch.randn(150, tok.num_tokens, 8, dtype=torch.float64) * tok.mask
    moved = tok.decode(tok.permute(tok.encode(zoo) + eps, perm)) - tok.decode(tok.permute(tok.encode(zoo), perm))
    torch.testing.assert_close(tok._heads(tok.permute(eps, perm, linear=True), offset=False), moved, rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match="allowed: 1 to 49"):
        fit_tokenizer(zoo[:50], SPEC, 8, "pca", components=50)
    with pytest.raises(ValueError, match="unknown tokenizer mode .* allowed: minmax, standard, pca-global, pca"):
        fit_tokenizer(zoo, SPEC, 8, "svd")
    state = tok.state_dict()
    with pytest.raises(ValueError, match="does not fit its config"):
        tokenizer_from_state({**tok.config(), "components": 10}, state)
