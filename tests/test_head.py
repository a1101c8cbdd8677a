"""The CLIP-adapter head: layout, symmetry, and batched = looped evaluation."""

from __future__ import annotations

import pytest
import torch

from t2wlib.heads.adapter import (
    CLIPAdapter,
    HeadSpec,
    flatten,
    head_logits,
    permute_hidden,
    sampled_task_loss,
    task_accuracy,
    task_loss,
    task_membership,
    task_predictions,
    unflatten,
)

SPEC = HeadSpec(feature_dim=12, hidden=5, embed_dim=7)


def _theta(h: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(h, SPEC.num_params, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_parameter_count():
    assert SPEC.num_params == 5 * 12 + 5 + 7 * 5 + 7
    # ResNet-18 + CLIP (F = D = 512, r = 16): 16,384 weights (the paper's 512x16x2) + 528 biases.
    assert HeadSpec(512, 16, 512).num_params == 16_912


def test_flatten_unflatten_roundtrip_is_exact():
    theta = _theta(3)
    p = unflatten(theta, SPEC)
    assert p["W1"].shape == (3, 5, 12) and p["W2"].shape == (3, 7, 5)
    assert torch.equal(flatten(p, SPEC), theta)
    assert torch.equal(p["W1"][1].flatten(), theta[1, :60])  # W1 row-major first, as documented
    with pytest.raises(ValueError, match="parameters per head"):
        unflatten(theta[:, :-1], SPEC)


def test_module_and_functional_forms_agree():
    torch.manual_seed(0)
    module = CLIPAdapter(SPEC)
    x, e = torch.randn(4, 12), torch.nn.functional.normalize(torch.randn(3, 7), dim=-1)
    theta = module.flat()
    torch.testing.assert_close(head_logits(theta[None], x, e, SPEC)[0], module.logits(x, e))
    assert torch.equal(CLIPAdapter.from_flat(theta, SPEC).flat(), theta)


def test_permuted_heads_compute_the_same_function():
    theta = _theta(4, seed=1)
    g = torch.Generator().manual_seed(2)
    perm = torch.stack([torch.randperm(SPEC.hidden, generator=g) for _ in range(4)])
    permuted = permute_hidden(theta, perm, SPEC)
    x, e = torch.randn(6, 12, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    assert not torch.equal(permuted, theta)
    torch.testing.assert_close(head_logits(permuted, x, e, SPEC), head_logits(theta, x, e, SPEC))
    # W1 rows move with the permutation: new unit j is old unit perm[j].
    assert torch.equal(unflatten(permuted, SPEC)["W1"][0, 0], unflatten(theta, SPEC)["W1"][0, perm[0, 0]])
    inverse = perm.argsort(-1)
    assert torch.equal(permute_hidden(permuted, inverse, SPEC), theta)


def test_batched_logits_equal_per_head_loop():
    theta = _theta(3, seed=3)
    x = torch.randn(3, 5, 12, dtype=torch.float64)  # each head its own batch
    e = torch.randn(3, 4, 7, dtype=torch.float64)  # each head its own class embeddings
    batched = head_logits(theta, x, e, SPEC)
    for i in range(3):
        module = CLIPAdapter.from_flat(theta[i], SPEC)
        torch.testing.assert_close(batched[i], module.logits(x[i], e[i]))


def test_task_accuracy_equals_per_task_loop():
    g = torch.Generator().manual_seed(4)
    C, N = 6, 60
    x, y = torch.randn(N, 12, generator=g), torch.randint(0, C, (N,), generator=g)
    class_emb = torch.nn.functional.normalize(torch.randn(C, 7, generator=g), dim=-1)
    tasks = torch.tensor([[0, 1, -1, -1], [2, 3, 4, 5], [5, 0, 3, -1]])
    theta = _theta(3, seed=5).float()
    acc = task_accuracy(theta, x, y, class_emb, tasks, SPEC)
    pred, in_task = task_predictions(theta, x, y, class_emb, tasks, SPEC, max_elements=1)  # chunks of one head
    assert torch.equal(((pred == y) & in_task).sum(1) / in_task.sum(1), acc)
    for i, row in enumerate(tasks):
        classes = row[row >= 0]
        keep = torch.isin(y, classes)
        logits = CLIPAdapter.from_flat(theta[i], SPEC).logits(x[keep], class_emb[classes])
        expected = (classes[logits.argmax(-1)] == y[keep]).float().mean()
        torch.testing.assert_close(acc[i], expected)


def test_task_membership_rejects_out_of_range_classes():
    assert task_membership(torch.tensor([[1, -1]]), 3).tolist() == [[False, True, False]]
    with pytest.raises(ValueError, match="out of range"):
        task_membership(torch.tensor([[3]]), 3)


def test_bad_spec():
    with pytest.raises(ValueError, match="hidden must be positive"):
        HeadSpec(4, 0, 4)


@pytest.mark.parametrize("dense_threshold", [0, 10**9], ids=["gather", "dense"])
def test_rows_form_equals_explicit_per_head_batches(monkeypatch, dense_threshold):
    import t2wlib.heads.adapter as head

    monkeypatch.setattr(head, "DENSE_FIRST_LAYER", dense_threshold)
    theta = _theta(3, seed=6)
    g = torch.Generator().manual_seed(7)
    X, e = torch.randn(20, 12, generator=g, dtype=torch.float64), torch.randn(3, 4, 7, generator=g, dtype=torch.float64)
    rows = torch.randint(0, 20, (3, 5), generator=g)
    torch.testing.assert_close(head_logits(theta, X, e, SPEC, rows=rows), head_logits(theta, X[rows], e, SPEC))


def test_sampled_task_loss_draws_from_each_task_and_carries_gradients():
    g = torch.Generator().manual_seed(6)
    C, N = 6, 600
    x, y = torch.randn(N, 12, generator=g), torch.arange(N) % C
    class_emb = torch.nn.functional.normalize(torch.randn(C, 7, generator=g), dim=-1)
    tasks = torch.tensor([[0, 1, -1], [2, 3, 4]])
    theta = _theta(2, seed=7).float().requires_grad_()
    loss = sampled_task_loss(theta, x, y, class_emb, tasks, SPEC, 4000, torch.Generator().manual_seed(0))
    loss.backward()
    assert theta.grad is not None and bool(theta.grad.abs().sum(1).gt(0).all())  # every head gets a gradient
    # with many draws it is the class-balanced cross-entropy over both tasks (classes drawn uniformly)
    per_class = []
    for i, row in enumerate(tasks):
        classes = row[row >= 0]
        keep = torch.isin(y, classes)
        logits = CLIPAdapter.from_flat(theta[i].detach(), SPEC).logits(x[keep], class_emb[classes])
        nll = torch.nn.functional.cross_entropy(logits, torch.searchsorted(classes, y[keep]), reduction="none")
        per_class.append(torch.stack([nll[y[keep] == c].mean() for c in classes]).mean())
    assert float(loss) == pytest.approx(float(torch.stack(per_class).mean()), rel=0.05)
    with pytest.raises(ValueError, match="a task class has no sample"):
        sampled_task_loss(theta, x[y != 4], y[y != 4], class_emb, tasks, SPEC, 8, torch.Generator())


def test_task_loss_equals_per_task_cross_entropy():
    g = torch.Generator().manual_seed(6)
    C, N = 6, 50
    x, y = torch.randn(N, 12, generator=g), torch.randint(0, C, (N,), generator=g)
    class_emb = torch.nn.functional.normalize(torch.randn(C, 7, generator=g), dim=-1)
    tasks = torch.tensor([[0, 1, -1], [2, 3, 4], [5, 0, 3]])
    theta = _theta(3, seed=7).float()
    loss = task_loss(theta, x, y, class_emb, tasks, SPEC, max_elements=1)  # chunks of one head
    for i, row in enumerate(tasks):
        classes = row[row >= 0].sort().values
        keep = torch.isin(y, classes)
        logits = CLIPAdapter.from_flat(theta[i], SPEC).logits(x[keep], class_emb[classes])
        expected = torch.nn.functional.cross_entropy(logits, torch.searchsorted(classes, y[keep]))
        torch.testing.assert_close(loss[i], expected)
