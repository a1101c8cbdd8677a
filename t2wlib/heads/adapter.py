"""The CLIP-adapter head (docs/ARCHITECTURE.md §3, paper §4.1): the network whose weights T2W generates.

    f (F) -> Linear(F, r) -> GELU -> Linear(r, D) -> L2-normalise -> h (D)
    logits_i = s * h . E(c_i),   E(c_i) the unit text embedding of class c_i, s = 100 (CLIP's scale)

Flat parameter layout theta (P,), P = r*F + r + D*r + D, in nn.Linear's (out, in) convention:
    [ W1 (r, F) row-major | b1 (r) | W2 (D, r) row-major | b2 (D) ]
Symmetry: permuting the r hidden units (rows of W1, entries of b1, columns of W2) leaves the
function unchanged, because GELU acts elementwise.

The functional forms take a *stack* theta (H, P) of heads and evaluate all of them in one batched
call; the module `CLIPAdapter` is the same network as an nn.Module for single-head use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as Fn
from torch import nn

LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class HeadSpec:
    """Shapes of a head: backbone feature dim F, hidden width r, text embedding dim D."""

    feature_dim: int
    hidden: int
    embed_dim: int

    def __post_init__(self):
        for name in ("feature_dim", "hidden", "embed_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"HeadSpec.{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict:
        """The one serialised form of a head spec (zoo config, generator.json, tokenizer, classifier files)."""
        return {"feature_dim": self.feature_dim, "hidden": self.hidden, "embed_dim": self.embed_dim}

    @classmethod
    def from_json(cls, record: dict) -> HeadSpec:
        if not isinstance(record, dict) or set(record) != {"feature_dim", "hidden", "embed_dim"}:
            raise ValueError(f"a head spec is {{feature_dim, hidden, embed_dim}}, got {record!r}")
        return cls(**record)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter shapes in flat-layout order."""
        F, r, D = self.feature_dim, self.hidden, self.embed_dim
        return {"W1": (r, F), "b1": (r,), "W2": (D, r), "b2": (D,)}

    @property
    def num_params(self) -> int:
        F, r, D = self.feature_dim, self.hidden, self.embed_dim
        return r * F + r + D * r + D


def unflatten(theta: torch.Tensor, spec: HeadSpec) -> dict[str, torch.Tensor]:
    """theta (..., P) -> {W1 (..., r, F), b1 (..., r), W2 (..., D, r), b2 (..., D)} (views)."""
    if theta.shape[-1] != spec.num_params:
        raise ValueError(f"theta has {theta.shape[-1]} parameters per head; {spec} needs {spec.num_params}")
    out, start = {}, 0
    for name, shape in spec.shapes.items():
        n = int(torch.Size(shape).numel())
        out[name] = theta[..., start:start + n].reshape(*theta.shape[:-1], *shape)
        start += n
    return out


def flatten(params: dict[str, torch.Tensor], spec: HeadSpec) -> torch.Tensor:
    """Inverse of `unflatten`: {W1, b1, W2, b2} with leading dims (...) -> theta (..., P)."""
    lead = params["b2"].shape[:-1]
    return torch.cat([params[name].reshape(*lead, -1) for name in spec.shapes], dim=-1)


# Below this value of N r / B, computing W1 x for all N rows (compute-bound) beats gathering each
# head's B rows (memory-bound); set near the crossover benchmarks/bench_zoo.py finds on 2 CPU cores.
DENSE_FIRST_LAYER = 128


def _hidden(p: dict[str, torch.Tensor], x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """GELU(W1 x + b1) for stacked heads -> g (H, B, r). x is (B, F) shared by all heads, (H, B, F)
    per head, or (N, F) with `rows` (H, B): head h sees samples x[rows[h]]."""
    W1 = p["W1"]  # (H, r, F)
    if rows is not None:
        (H, B), (N, F), r = rows.shape, x.shape, W1.shape[1]
        if N * r < DENSE_FIRST_LAYER * B:
            a = (x @ W1.reshape(H * r, F).T).view(N, H, r)[rows, torch.arange(H, device=x.device).unsqueeze(1)]
        else:
            a = torch.bmm(x.index_select(0, rows.flatten()).view(H, B, F), W1.transpose(1, 2))
    elif x.ndim == 2:
        a = torch.einsum("bf,hrf->hbr", x, W1)
    else:
        a = torch.bmm(x, W1.transpose(1, 2))
    return Fn.gelu(a + p["b1"].unsqueeze(1))


def head_features(theta: torch.Tensor, x: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """Stacked heads on features: theta (H, P), x (B, F) shared or (H, B, F) per head -> h (H, B, D), unit norm."""
    p = unflatten(theta, spec)
    z = torch.bmm(_hidden(p, x), p["W2"].transpose(1, 2)) + p["b2"].unsqueeze(1)  # (H, B, D)
    return Fn.normalize(z, dim=-1)


def head_logits(theta: torch.Tensor, x: torch.Tensor, class_emb: torch.Tensor, spec: HeadSpec,
                scale: float = LOGIT_SCALE, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of every head against its own classes: class_emb (K, D) shared or (H, K, D) -> (H, B, K).
    x as in `_hidden`: (B, F), (H, B, F), or (N, F) with rows (H, B).

    Equal to scale * head_features(...) @ class_emb^T, computed without forming z = W2 g + b2 in D
    dimensions (r << D, and z's normalisation dominated the batched trainer's time):
        z . e = g . (W2^T e) + b2 . e,    |z|^2 = g^T (W2^T W2) g + 2 g . (W2^T b2) + |b2|^2.
    """
    return params_logits(unflatten(theta, spec), x, class_emb, scale, rows)


def params_logits(p: dict[str, torch.Tensor], x: torch.Tensor, class_emb: torch.Tensor, scale: float = LOGIT_SCALE,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """`head_logits` from the heads' parameters {W1, b1, W2, b2} (leading dim H), as `unflatten` gives them."""
    g = _hidden(p, x, rows)  # (H, B, r)
    W2, b2 = p["W2"], p["b2"]  # (H, D, r), (H, D)
    if class_emb.ndim == 2:
        M, c = torch.einsum("kd,hdr->hkr", class_emb, W2), b2 @ class_emb.T  # (H, K, r), (H, K)
    else:
        M, c = torch.bmm(class_emb, W2), torch.einsum("hkd,hd->hk", class_emb, b2)
    gram = torch.bmm(W2.transpose(1, 2), W2)  # (H, r, r)
    u = torch.einsum("hdr,hd->hr", W2, b2)  # (H, r)
    sq = (torch.bmm(g, gram) * g).sum(-1) + 2 * torch.einsum("hbr,hr->hb", g, u) + (b2 * b2).sum(-1, keepdim=True)
    norm = sq.clamp_min(1e-24).sqrt()  # F.normalize's max(|z|, 1e-12)
    return scale * (torch.bmm(g, M.transpose(1, 2)) + c.unsqueeze(1)) / norm.unsqueeze(-1)


def permute_hidden(theta: torch.Tensor, perm: torch.Tensor, spec: HeadSpec) -> torch.Tensor:
    """The symmetry action g . theta: theta (..., P), perm (..., r) a permutation of range(r) per head.

    New hidden unit j is old unit perm[j]: W1 rows, b1 entries and W2 columns are gathered alike.
    """
    p = unflatten(theta, spec)
    perm = perm.expand(*theta.shape[:-1], spec.hidden)
    W1 = torch.gather(p["W1"], -2, perm.unsqueeze(-1).expand_as(p["W1"]))
    b1 = torch.gather(p["b1"], -1, perm)
    W2 = torch.gather(p["W2"], -1, perm.unsqueeze(-2).expand_as(p["W2"]))
    return flatten({"W1": W1, "b1": b1, "W2": W2, "b2": p["b2"]}, spec)


def task_membership(task_classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """task_classes (H, K) class ids padded with -1 -> member (H, C) bool."""
    if task_classes.numel() and int(task_classes.max()) >= num_classes:
        raise ValueError(f"task class id {int(task_classes.max())} out of range for {num_classes} classes")
    member = torch.zeros(task_classes.shape[0], num_classes + 1, dtype=torch.bool, device=task_classes.device)
    member.scatter_(1, task_classes.where(task_classes >= 0, num_classes), True)
    return member[:, :num_classes]


def _task_logits(theta, x, y, class_emb, task_classes, spec, max_elements):
    """Each head's logits on its own task's samples over its own task's classes, in chunks of heads:
    yields (first head index s, rows (h, B) the indices into x of each head's task samples, -1
    padded, logits (h, B, K) with padding classes at -inf). Only the task's samples and classes are
    computed: a task of k classes among C sees about k / C of the samples, and holds k of C classes."""
    C, N, K = class_emb.shape[0], len(x), task_classes.shape[1]
    task_classes = task_classes.to(x.device)
    per_class = torch.bincount(y, minlength=C)
    counts = (per_class[task_classes.clamp_min(0)] * (task_classes >= 0)).sum(1)  # (H,) task samples per head
    widest = int(counts.max()) if len(counts) else 0
    # Heads per chunk, bounded by each head's largest tensors: its samples' features gathered
    # (B, F), logits and hidden units (B, K + r), class embeddings (K, D), the dense W1 x (N, r).
    per_head = widest * (spec.feature_dim + K + spec.hidden) + K * spec.embed_dim + N * spec.hidden
    chunk = max(1, max_elements // max(1, per_head))
    for s in range(0, theta.shape[0], chunk):
        classes = task_classes[s:s + chunk]  # (h, K)
        member = task_membership(classes, C)[:, y]  # (h, N)
        B = int(counts[s:s + chunk].max())
        # The task's samples first, in their order (a stable sort of the membership).
        rows = member.to(torch.uint8).sort(dim=1, descending=True, stable=True).indices[:, :B]  # (h, B)
        valid = torch.arange(B, device=x.device) < counts[s:s + chunk].unsqueeze(1)
        logits = head_logits(theta[s:s + chunk], x, class_emb[classes.clamp_min(0)], spec, rows=rows)  # (h, B, K)
        yield s, rows.where(valid, -1), logits.masked_fill_((classes < 0).unsqueeze(1), float("-inf"))


@torch.no_grad()
def task_predictions(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
                     task_classes: torch.Tensor, spec: HeadSpec, max_elements: int = 1 << 25):
    """Each head's predictions on its own task, all heads in batched chunks.

    theta (H, P); x (N, F) and y (N,) a labelled split of the base dataset; class_emb (C, D) all
    class embeddings; task_classes (H, K) each head's class ids (-1 padded). Head i predicts the
    argmax over its task's classes only, on its task's samples. Returns pred (H, N) class ids (-1
    on samples outside the head's task) and in_task (H, N) bool: whether sample n belongs to head
    i's task (only those count).
    """
    pred = torch.full((theta.shape[0], len(x)), -1, dtype=torch.int64, device=x.device)
    for s, rows, logits in _task_logits(theta, x, y, class_emb, task_classes, spec, max_elements):
        head, j = (rows >= 0).nonzero(as_tuple=True)
        pred[s + head, rows[head, j]] = task_classes[s + head, logits.argmax(-1)[head, j]].to(x.device)
    return pred, task_membership(task_classes.to(x.device), class_emb.shape[0])[:, y]


def _local_labels(y: torch.Tensor, rows: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The position (h, B) of each task sample's label among its head's task classes (h, K)."""
    return (y[rows.clamp_min(0)].unsqueeze(-1) == classes.unsqueeze(1)).to(torch.uint8).argmax(-1)


@torch.no_grad()
def task_loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
              task_classes: torch.Tensor, spec: HeadSpec, max_elements: int = 1 << 25) -> torch.Tensor:
    """Mean cross-entropy (H,) of each head over its task's samples, softmax over its task's classes
    (arguments as in `task_predictions`)."""
    out = []
    for s, rows, logits in _task_logits(theta, x, y, class_emb, task_classes, spec, max_elements):
        local = _local_labels(y, rows, task_classes[s:s + len(rows)].to(x.device))
        nll = -logits.log_softmax(-1).gather(-1, local.unsqueeze(-1)).squeeze(-1)  # (h, B)
        valid = rows >= 0
        out.append(nll.where(valid, 0.0).sum(1) / valid.sum(1))
    return torch.cat(out) if out else torch.empty(0)


def class_index(y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels y (N,) grouped by class: the sample indices sorted by class (N,), where each class
    starts among them (C,), and its sample count (C,)."""
    counts = torch.bincount(y, minlength=num_classes)
    return torch.argsort(y, stable=True), torch.cumsum(counts, 0) - counts, counts


def sampled_task_loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
                      task_classes: torch.Tensor, spec: HeadSpec, per_task: int, generator: torch.Generator,
                      index: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean cross-entropy (a scalar, differentiable in θ) of heads θ (H, P) on `per_task` samples of
    their own tasks: for each draw a class of the head's task uniformly, then one of its samples in
    (x, y), softmax over the task's classes (other arguments as in `task_predictions`; `index`:
    `class_index(y, C)`, made here when not given). Training through the task loss (Text-to-LoRA's
    choice) needs it each step, so it samples instead of visiting every task sample as `task_loss` does."""
    by_class, first, counts = class_index(y, class_emb.shape[0]) if index is None else index
    if bool((counts[task_classes[task_classes >= 0]] == 0).any()):
        raise ValueError("sampled_task_loss: a task class has no sample in the split")
    k = (task_classes >= 0).sum(1, keepdim=True)  # (H, 1) classes per task
    local = (torch.rand(len(theta), per_task, generator=generator) * k).long()  # (H, B) position among the task's classes
    cls = task_classes.gather(1, local)  # (H, B) class ids
    rows = by_class[first[cls] + (torch.rand(cls.shape, generator=generator) * counts[cls]).long()]  # (H, B)
    # The drawn samples gathered per head (H, B, F): a few per task, so never the dense first layer
    # over all N samples that `rows=` would pick for a large split.
    logits = head_logits(theta, x[rows], class_emb[task_classes.clamp_min(0)], spec)  # (H, B, K)
    logits = logits.masked_fill((task_classes < 0).unsqueeze(1), float("-inf"))
    return Fn.cross_entropy(logits.flatten(0, 1), local.flatten())


@dataclass(frozen=True)
class TaskLossTerm:
    """The task loss of a weight generator's objective (weighted by its TrainConfig.lambda_task): the
    cross-entropy of each generated head on `per_task` training samples of its own seen task
    (`sampled_task_loss`; Text-to-LoRA trains through it rather than regressing stored weights).
    x (N, F), y (N,): the zoo's training features; class_emb (C, D); task_classes (S, K): the class
    ids of the seen tasks, row for row with the generator's training heads, -1 padded; spec: the heads'.
    The labels are grouped by class once (`class_index`), not at every step."""

    spec: HeadSpec
    x: torch.Tensor
    y: torch.Tensor
    class_emb: torch.Tensor
    task_classes: torch.Tensor
    per_task: int = 64
    index: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "index", class_index(self.y, self.class_emb.shape[0]))

    def __call__(self, theta: torch.Tensor, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loss of heads θ (B, P) generated for the training tasks `rows` (B,)."""
        return sampled_task_loss(theta, self.x, self.y, self.class_emb, self.task_classes[rows], self.spec,
                                 self.per_task, generator, self.index)

    def describe(self) -> dict:
        return {"per_task": self.per_task, "samples": len(self.x), "classes": self.class_emb.shape[0]}


def check_task_loss(weight: float, term: TaskLossTerm | None, heads: int, what: str) -> None:
    """ValueError when a task-loss weight > 0 comes without a term holding the classes of each of
    the `heads` training heads (`what` they are)."""
    if weight > 0 and (term is None or len(term.task_classes) != heads):
        raise ValueError(f"lambda_task = {weight} needs a task loss with the classes of each of the {heads} {what}")


@torch.no_grad()
def task_class_hits(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
                    task_classes: torch.Tensor, spec: HeadSpec, max_elements: int = 1 << 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head theta (H, P) and per class of its own task (arguments as in `task_predictions`): how many
    of that class's samples it classifies correctly, and how many there are, each (H, K) int64 (0 in a
    padding column). A task's accuracy is the ratio of their sums; the bootstrap over classes
    (experiments/intervals.py) needs them class by class."""
    correct, samples = [], []
    for s, rows, logits in _task_logits(theta, x, y, class_emb, task_classes, spec, max_elements):
        local = _local_labels(y, rows, task_classes[s:s + len(rows)].to(x.device))
        valid = rows >= 0
        zeros = torch.zeros(len(rows), task_classes.shape[1], dtype=torch.int64, device=x.device)
        samples.append(zeros.scatter_add(1, local, valid.long()))
        correct.append(zeros.scatter_add(1, local, ((logits.argmax(-1) == local) & valid).long()))
    if not correct:
        return torch.empty(0, task_classes.shape[1], dtype=torch.int64), torch.empty(0, task_classes.shape[1], dtype=torch.int64)
    return torch.cat(correct).cpu(), torch.cat(samples).cpu()


def task_accuracy(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, class_emb: torch.Tensor,
                  task_classes: torch.Tensor, spec: HeadSpec, max_elements: int = 1 << 25) -> torch.Tensor:
    """Accuracy (H,) in [0, 1] of each head theta (H, P) on its own task (arguments as in
    `task_predictions`); NaN for a task with no samples in the split."""
    correct, samples = task_class_hits(theta, x, y, class_emb, task_classes, spec, max_elements)
    return correct.sum(1) / samples.sum(1)  # 0/0 -> NaN for an empty task


class CLIPAdapter(nn.Module):
    """One CLIP-adapter head as an nn.Module (same layout and function as the stacked forms)."""

    def __init__(self, spec: HeadSpec):
        super().__init__()
        self.spec = spec
        self.fc1 = nn.Linear(spec.feature_dim, spec.hidden)
        self.fc2 = nn.Linear(spec.hidden, spec.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, F) -> h (B, D), unit norm."""
        return Fn.normalize(self.fc2(Fn.gelu(self.fc1(x))), dim=-1)

    def logits(self, x: torch.Tensor, class_emb: torch.Tensor, scale: float = LOGIT_SCALE) -> torch.Tensor:
        """x (B, F), class_emb (K, D) -> (B, K)."""
        return scale * self(x) @ class_emb.T

    def flat(self) -> torch.Tensor:
        """theta (P,) in the documented layout."""
        p = {"W1": self.fc1.weight, "b1": self.fc1.bias, "W2": self.fc2.weight, "b2": self.fc2.bias}
        return flatten({k: v.detach() for k, v in p.items()}, self.spec)

    @classmethod
    def from_flat(cls, theta: torch.Tensor, spec: HeadSpec) -> CLIPAdapter:
        head = cls(spec).to(theta.dtype)
        p = unflatten(theta.detach(), spec)
        with torch.no_grad():
            head.fc1.weight.copy_(p["W1"])
            head.fc1.bias.copy_(p["b1"])
            head.fc2.weight.copy_(p["W2"])
            head.fc2.bias.copy_(p["b2"])
        return head
