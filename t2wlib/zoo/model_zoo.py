"""The model zoo (paper §4.1, App. B.3, Alg. 2): trained heads of many sub-tasks, built resumably.

Stage 1 trains one adapter on all classes of the base dataset (θ0*); stage 2 starts every task's
head from θ0* and fine-tunes it on the task's own classes, all heads of a shard at once
(`training.train_heads`). With `starts` = M > 1 (a multi-solution zoo, 10_diffusion_vs_regression)
stage 1 runs M times with different seeds and every task is fine-tuned from each of the M θ0*'s:
the zoo's rows are then (task, start) pairs, start-major (row m·N + i is task i from start m), so
rows 0..N-1 are the single-solution zoo of the same tasks (equal up to float rounding: shards batch
other heads together). The Universal Model (§4.2) is one head trained on all classes from scratch,
scored on each task with logits restricted to the task's classes.

A zoo is a folder:
    config.json                  ZooConfig, head spec, class names, where features and texts came from
    tasks.json                   the TaskSet (classes and split of every row: a task repeated per start)
    stage1.safetensors           θ0* (P,)                 (each .safetensors has a checksummed .json sidecar)
    stage1_start{m}.safetensors  the θ0* of start m = 1..M-1 (multi-solution zoos only)
    universal.safetensors        the Universal Model (P,)
    shards/shard_NNNNN.safetensors   theta (n, P), task_ids (n,), train_loss (n, epochs), test_accuracy (n,)
    task_text.safetensors        v_c per text variant (T, D) and class embeddings (C, D)
    manifest.json                written last: per task (classes, k, split, seed, accuracies, shard) and
                                 per shard (file, sha256); its presence marks a complete zoo
    weight_stats.json            per-layer statistics of the zoo's weights

Every file is written atomically, so a build killed at any point restarts where it stopped: finished
shards are verified and kept, a shard in progress is recomputed from its seeds, giving the same zoo
as an uninterrupted build. Under torchrun, rank r builds shards r, r + W, r + 2W, ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.std import tqdm  # text bars: tqdm.auto wants ipywidgets in a kernel, and warns without them

from ..core.distributed import barrier, rank_world
from ..core.files import (
    CorruptArtifactError,
    atomic_write_text,
    read_json_checked,
    sha256_file,
    write_json_checked,
    write_json_once,
)
from ..core.locks import FolderLock
from ..core.sealed import load_checked, save_checked, tensor_digest
from ..core.tensor_cache import CacheCorruptionWarning, TensorCache
from ..data.subtasks import TaskSet, sample_tasks
from ..data.task_condition import check_distinct, fuse_features
from ..heads.adapter import CLIPAdapter, HeadSpec, task_accuracy, unflatten
from ..heads.training import HeadTrainConfig, train_heads

if TYPE_CHECKING:  # annotations only: loading a zoo needs no image stack
    from ..data.features import FeatureSet

FORMAT = "t2w-zoo/2"


@dataclass(frozen=True)
class ZooConfig:
    """How a zoo is built; stored in config.json, and a rebuild with another config is refused."""

    num_tasks: int
    k_range: tuple[int, int]
    hidden: int
    stage1: HeadTrainConfig
    stage2: HeadTrainConfig
    universal: HeadTrainConfig
    seed: int
    unseen_fraction: float = 0.2
    held_out_classes: int = 0
    # Heads trained together in one batched program and stored in one file.
    shard_size: int = 128
    # Stage-1 runs (θ0*'s) every task is fine-tuned from: 1 is the paper's zoo.
    starts: int = 1

    def __post_init__(self):
        if self.starts < 1:
            raise ValueError(f"a zoo needs starts >= 1 stage-1 runs, got {self.starts}")

    def to_json(self) -> dict:
        record = json.loads(json.dumps(dataclasses.asdict(self)))
        if self.starts == 1:  # written only when set, so that single-solution zoos keep their folder digest
            del record["starts"]
        return record

    @classmethod
    def from_json(cls, d: dict) -> ZooConfig:
        d = dict(d)
        for stage in ("stage1", "stage2", "universal"):
            d[stage] = HeadTrainConfig(**{**d[stage], "betas": tuple(d[stage]["betas"])})
        return cls(**{**d, "k_range": tuple(d["k_range"])})

    def task_seed(self, row: int) -> int:
        """Shuffling seed of row `row`'s fine-tuning (independent of shard and rank)."""
        return self.seed * 1_000_003 + row

    def stage1_seed(self, start: int) -> int:
        """Seed of stage-1 run `start`: start 0 is the single-solution zoo's (the Universal Model
        takes seed + 1)."""
        return self.seed if start == 0 else self.seed + 1 + start


def stage1_file(start: int) -> str:
    return "stage1.safetensors" if start == 0 else f"stage1_start{start}.safetensors"


def solution_rows(tasks: TaskSet, starts: int) -> TaskSet:
    """The zoo's rows for `starts` stage-1 runs: every task once per start, start-major."""
    return TaskSet(tasks.classes * starts, tasks.split * starts, tasks.held_out)






def shard_plan(tasks: TaskSet, shard_size: int) -> list[list[int]]:
    """Task ids per shard: sorted by (k, id) so that a shard's heads have similar schedule lengths."""
    order = sorted(range(len(tasks)), key=lambda i: (len(tasks.classes[i]), i))
    return [order[s:s + shard_size] for s in range(0, len(order), shard_size)]


def check_zoo_inputs(train: FeatureSet, test: FeatureSet, text_emb: dict[str, torch.Tensor]) -> None:
    """Everything build_zoo needs from its inputs, checked before its first file is written."""
    if "prompt" not in text_emb:
        raise ValueError(f"text_emb needs a 'prompt' variant; got {sorted(text_emb)}")
    C = len(train.class_names)
    if test.class_names != train.class_names:
        raise ValueError(f"train and test features have different classes ({C} vs {len(test.class_names)})")
    if train.X.shape[1] != test.X.shape[1]:
        raise ValueError(f"train and test features differ in width: {train.X.shape[1]} vs {test.X.shape[1]}")
    dims = set()
    for variant, emb in text_emb.items():
        if emb.ndim != 2 or len(emb) != C:
            raise ValueError(f"text embeddings {variant!r} have shape {tuple(emb.shape)}; need one row per class, ({C}, D)")
        if not torch.isfinite(emb).all():
            raise ValueError(f"text embeddings {variant!r} hold NaN or inf values")
        dims.add(emb.shape[1])
    if len(dims) > 1:
        raise ValueError(f"text embedding variants differ in width: {sorted(dims)}")
    check_distinct(train.class_names, text_emb["prompt"])  # the embeddings the heads score images against
    for split, fs in (("train", train), ("test", test)):
        if not torch.isfinite(fs.X).all():
            raise ValueError(f"{split} features hold NaN or inf values")
        if len(fs.y) and (int(fs.y.min()) < 0 or int(fs.y.max()) >= C):
            raise ValueError(f"{split} labels must be in [0, {C - 1}]")


def _checked_or_compute(path: Path, compute, meta: dict) -> dict[str, torch.Tensor]:
    """Load a verified artifact, or compute, save and return it (a corrupted one is warned about)."""
    if path.exists():
        try:
            return load_checked(path, expect=meta)[0]
        except CorruptArtifactError as err:
            warnings.warn(f"recomputing: {err}", CacheCorruptionWarning, stacklevel=2)
    start = time.perf_counter()
    tensors = compute()
    save_checked(path, tensors, {**meta, "seconds": round(time.perf_counter() - start, 3)})
    return tensors


def _train_from_scratch(train: FeatureSet, emb: torch.Tensor, cfg: HeadTrainConfig, spec: HeadSpec, seed: int,
                        cache: TensorCache | None = None):
    """One head on all classes from a seeded random init (stage 1 and the Universal Model). With a
    cache, keyed by the training data's bytes, the class embeddings, the config and the seed: zoos
    of the same data (the held-out-classes zoo, the multi-solution zoo's first start) share it."""
    def train_head():
        torch.manual_seed(seed)
        theta0 = CLIPAdapter(spec).flat()
        all_classes = torch.arange(len(train.class_names)).unsqueeze(0)
        theta, loss = train_heads(theta0, train.X, train.y, emb, all_classes, [seed], cfg, spec)
        return {"theta": theta[0], "train_loss": loss[0]}

    if cache is None:
        return train_head()
    key = {"format": FORMAT, "data": tensor_digest({"X": train.X, "y": train.y, "class_emb": emb}),
           "config": dataclasses.asdict(cfg), "spec": spec.to_json(), "seed": seed}
    return cache.get_or_compute("from_scratch_heads", key, train_head)


def build_zoo(directory: str | Path, cfg: ZooConfig, train: FeatureSet, test: FeatureSet,
              text_emb: dict[str, torch.Tensor], source: dict, progress: bool = True,
              cache: TensorCache | None = None) -> Path:
    """Build (or resume) the zoo in `directory` and return the manifest path.

    text_emb: class embeddings per text variant, (C, D) each; "prompt" (T2W-CLIP) is the one the
    heads' logits use, and every variant gets a task text vector v_c (Alg. 1). `source` records
    where the features and texts came from (dataset, backbone, encoder, profile). `cache`: where
    stage 1 and the Universal Model are kept for other zoos of the same data (`_train_from_scratch`);
    a zoo's own files are the same either way, but its recorded seconds count a reused head's loading.
    """
    check_zoo_inputs(train, test, text_emb)
    # Impossible requests (k > classes, more tasks than distinct subsets) fail here, before any file.
    base = sample_tasks(len(train.class_names), cfg.num_tasks, cfg.k_range, cfg.seed, cfg.unseen_fraction,
                        cfg.held_out_classes)
    tasks = solution_rows(base, cfg.starts)
    spec = HeadSpec(train.X.shape[1], cfg.hidden, text_emb["prompt"].shape[1])
    rank, world = rank_world()
    directory = Path(directory)
    definition = {"format": FORMAT, "config": cfg.to_json(), "spec": spec.to_json(), "class_names": train.class_names,
                  "source": source}
    manifest = directory / "manifest.json"
    if not manifest.exists():
        # One build per folder: a second process waits, then finds the zoo finished (rank 0 holds the lock).
        with FolderLock(directory, "zoo build", wait=True) if rank == 0 else contextlib.nullcontext():
            if not manifest.exists():
                _build(directory, cfg, train, test, text_emb, definition, spec, base, tasks, progress, cache, rank,
                       world)
    # Finished (the manifest is written last): checked, and nothing written, so a finished zoo on a
    # read-only disk is used as it is.
    _check_definition(directory, definition, tasks)
    read_json_checked(manifest, "zoo manifest")
    return manifest


def _check_definition(directory: Path, definition: dict, tasks: TaskSet) -> None:
    """The folder's configuration and task set are these (write_json_once writes them if absent)."""
    write_json_once(directory / "config.json", definition, "configuration")
    write_json_once(directory / "tasks.json", tasks.to_json(), "task set")


def _build(directory: Path, cfg: ZooConfig, train: FeatureSet, test: FeatureSet, text_emb: dict[str, torch.Tensor],
           definition: dict, spec: HeadSpec, base: TaskSet, tasks: TaskSet, progress: bool,
           cache: TensorCache | None, rank: int, world: int) -> None:
    """build_zoo's work, under its lock: stage 1, the Universal Model, the shards, then the manifest."""
    emb = text_emb["prompt"]
    (directory / "shards").mkdir(parents=True, exist_ok=True)
    _check_definition(directory, definition, tasks)

    stages = {"universal.safetensors": ("universal", cfg.universal, cfg.seed + 1)}
    stages.update({stage1_file(m): ("stage1", cfg.stage1, cfg.stage1_seed(m)) for m in range(cfg.starts)})
    if rank == 0:
        for file, (name, stage_cfg, seed) in stages.items():
            _checked_or_compute(directory / file,
                                lambda c=stage_cfg, s=seed: _train_from_scratch(train, emb, c, spec, s, cache),
                                {"artifact": name})
    barrier()
    # (M, P): θ0* of each start
    theta0 = torch.stack([load_checked(directory / stage1_file(m), expect={"artifact": "stage1"})[0]["theta"]
                          for m in range(cfg.starts)])
    start_of = torch.arange(len(tasks)) // len(base)  # (rows,)

    plan = shard_plan(tasks, cfg.shard_size)
    mine = range(rank, len(plan), world)
    for s in tqdm(mine, desc=f"zoo shards {directory.name}", unit="shard", disable=not progress or rank != 0):
        ids = plan[s]
        path = directory / "shards" / f"shard_{s:05d}.safetensors"
        start = time.perf_counter()

        def fine_tune(ids=ids):
            task_classes = tasks.padded(ids)
            theta, loss = train_heads(theta0[start_of[ids]], train.X, train.y, emb, task_classes,
                                      [cfg.task_seed(i) for i in ids], cfg.stage2, spec)
            acc = task_accuracy(theta, test.X, test.y, emb, task_classes, spec)
            return {"theta": theta, "task_ids": torch.tensor(ids), "train_loss": loss, "test_accuracy": acc}

        _checked_or_compute(path, fine_tune, {"artifact": "shard", "shard": s, "task_ids": ids})
        if progress:
            print(f"[zoo] {directory.name}: shard {s + 1}/{len(plan)} ({len(ids)} heads) "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
    barrier()
    if rank == 0:
        _finish(directory, cfg, spec, tasks, plan, text_emb, test, len(base))
    barrier()


def _finish(directory: Path, cfg: ZooConfig, spec: HeadSpec, tasks: TaskSet, plan: list[list[int]],
            text_emb: dict[str, torch.Tensor], test: FeatureSet, base_tasks: int) -> None:
    """Task text vectors, Universal Model accuracies, weight statistics and the manifest (last)."""
    task_classes = tasks.padded()
    mask = task_classes >= 0
    task_text = {f"v_c/{variant}": fuse_features(e[task_classes.clamp_min(0)], mask) for variant, e in text_emb.items()}
    task_text.update({f"class_emb/{variant}": e for variant, e in text_emb.items()})
    save_checked(directory / "task_text.safetensors", task_text, {"artifact": "task_text"})

    universal = load_checked(directory / "universal.safetensors")[0]["theta"]
    universal_acc = task_accuracy(universal.expand(len(tasks), -1), test.X, test.y, text_emb["prompt"], task_classes, spec)
    shards, rows, thetas, seconds = [], {}, [], 0.0
    for s, ids in enumerate(plan):
        path = directory / "shards" / f"shard_{s:05d}.safetensors"
        tensors, meta = load_checked(path, expect={"task_ids": ids})
        shards.append({"file": f"shards/{path.name}", "sha256": meta["sha256"], "task_ids": ids})
        seconds += meta["seconds"]
        thetas.append(tensors["theta"])
        for j, i in enumerate(ids):
            rows[i] = {"id": i, "task": i % base_tasks, "start": i // base_tasks, "classes": list(tasks.classes[i]),
                       "k": len(tasks.classes[i]), "split": tasks.split[i], "seed": cfg.task_seed(i), "shard": s,
                       "test_accuracy": float(tensors["test_accuracy"][j]),
                       "universal_accuracy": float(universal_acc[i])}
    stats = weight_stats(torch.cat(thetas), spec)
    atomic_write_text(directory / "weight_stats.json", json.dumps(stats, indent=1))
    names = [stage1_file(m) for m in range(cfg.starts)] + ["universal.safetensors", "task_text.safetensors"]
    metas = {name: load_checked(directory / name)[1] for name in names}
    seconds += sum(m["seconds"] for name, m in metas.items() if name != "task_text.safetensors")
    files = {name: m["sha256"] for name, m in metas.items()}
    files.update({name: sha256_file(directory / name) for name in ("config.json", "tasks.json")})
    manifest = {"format": FORMAT, "tasks": [rows[i] for i in range(len(tasks))], "shards": shards, "files": files,
                # Training compute summed over stage 1, the Universal Model and every shard, so a
                # resumed build reports what the whole zoo cost.
                "train_seconds": round(seconds, 1)}
    write_json_checked(directory / "manifest.json", manifest)


def weight_stats(theta: torch.Tensor, spec: HeadSpec) -> dict:
    """Per-layer statistics over a stack of heads theta (T, P)."""
    return {name: {"mean": float(p.mean()), "std": float(p.std()), "min": float(p.min()), "max": float(p.max()),
                   "mean_abs": float(p.abs().mean()), "numel_per_head": int(p[0].numel())}
            for name, p in unflatten(theta, spec).items()}


@dataclass
class Zoo:
    """A loaded, verified zoo: heads theta (T, P) in row order and everything about them; or a view
    of one (`view`): some of its rows, or its heads transformed (e.g. permutation-aligned)."""

    directory: Path
    config: ZooConfig
    spec: HeadSpec
    tasks: TaskSet  # one entry per row
    class_names: list[str]
    source: dict
    theta: torch.Tensor  # (T, P)
    train_loss: torch.Tensor  # (T, stage-2 epochs)
    test_accuracy: torch.Tensor  # (T,)
    universal_accuracy: torch.Tensor  # (T,)
    stage1: torch.Tensor  # (P,) θ0* of start 0
    universal: torch.Tensor  # (P,)
    task_text: dict[str, torch.Tensor]  # "v_c/<variant>" (T, D), "class_emb/<variant>" (C, D)
    starts: torch.Tensor  # (M, P) θ0* of every start; starts[0] is stage1
    start: torch.Tensor  # (T,) the start each row's head was fine-tuned from
    rows: tuple[int, ...] | None = None  # a view's rows of the zoo on disk (None: all of them)
    view: str = ""  # a view's label ("" for the zoo on disk)

    @property
    def name(self) -> str:
        """The zoo's folder name, with the view's label: what generators are keyed by."""
        return self.directory.name + (f"/{self.view}" if self.view else "")

    def table(self):
        import pandas as pd

        manifest = read_json_checked(self.directory / "manifest.json", "zoo manifest")
        df = pd.DataFrame(manifest["tasks"])
        if self.rows is not None:
            df = df.iloc[list(self.rows)].reset_index(drop=True)
        df["class_names"] = [[self.class_names[c] for c in t] for t in df["classes"]]
        return df

    def task_condition(self, variant: str, ids: list[int], condition: str = "pooled") -> torch.Tensor:
        """What a generator of `condition` (generator.t2w.CONDITIONS) is conditioned on for tasks `ids`:
        their text vectors v_c (len(ids), D), or their class embeddings (len(ids), k_max, D) in the
        task's class order, zero rows after a task's last class (k_max: the zoo's largest task)."""
        if condition == "pooled":
            return self.task_text[f"v_c/{variant}"][ids]
        if condition != "classes":
            raise ValueError(f"unknown condition {condition!r}; allowed: pooled, classes")
        classes = self.tasks.padded(ids)  # (len(ids), k <= k_max), -1 padded
        e = self.task_text[f"class_emb/{variant}"][classes.clamp_min(0)] * (classes >= 0).unsqueeze(-1)
        return torch.nn.functional.pad(e, (0, 0, 0, self.config.k_range[1] - e.shape[1]))

    def select(self, rows: list[int], view: str) -> Zoo:
        """The view of rows `rows` (of this zoo), labelled `view`."""
        index = torch.as_tensor(rows, dtype=torch.int64)
        base = list(range(len(self.tasks))) if self.rows is None else list(self.rows)
        tasks = TaskSet(tuple(self.tasks.classes[i] for i in rows), tuple(self.tasks.split[i] for i in rows),
                        self.tasks.held_out)
        text = {k: (v[index] if k.startswith("v_c/") else v) for k, v in self.task_text.items()}
        return dataclasses.replace(self, tasks=tasks, theta=self.theta[index], train_loss=self.train_loss[index],
                                   test_accuracy=self.test_accuracy[index],
                                   universal_accuracy=self.universal_accuracy[index], task_text=text,
                                   start=self.start[index], rows=tuple(base[i] for i in rows),
                                   view="/".join(filter(None, (self.view, view))))

    def with_heads(self, theta: torch.Tensor, view: str) -> Zoo:
        """The same rows with other heads theta (T, P) (e.g. aligned), labelled `view`."""
        if theta.shape != self.theta.shape:
            raise ValueError(f"heads of shape {tuple(theta.shape)} for a zoo of {tuple(self.theta.shape)}")
        return dataclasses.replace(self, theta=theta, view="/".join(filter(None, (self.view, view))))


def load_zoo(directory: str | Path) -> Zoo:
    """Load a complete zoo, verifying every file: the manifest and the config and task set it names
    (checked JSON, and their sha256 in the manifest), every shard and artifact against the
    manifest's checksums. Errors name the file and say what to do."""
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} missing: the zoo in {directory} is incomplete (resume its build)")
    manifest = read_json_checked(manifest_path, "zoo manifest")
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{directory}: not a {FORMAT} zoo (format {manifest.get('format')!r}); rebuild it")

    def checked_json(name: str, what: str) -> dict:
        record = read_json_checked(directory / name, what)
        if sha256_file(directory / name) != manifest["files"].get(name):
            raise CorruptArtifactError(f"{directory / name} differs from the one the manifest recorded; rebuild the zoo")
        return record

    def checked(rel: str, sha: str) -> dict[str, torch.Tensor]:
        tensors, meta = load_checked(directory / rel)
        if meta["sha256"] != sha:
            raise CorruptArtifactError(f"{directory / rel}: checksum differs from the manifest's")
        return tensors

    config = checked_json("config.json", "zoo configuration")
    zoo_cfg = ZooConfig.from_json(config["config"])
    tasks = TaskSet.from_json(checked_json("tasks.json", "zoo task set"))
    T = len(tasks)
    parts = [checked(s["file"], s["sha256"]) for s in manifest["shards"]]
    order = torch.cat([p["task_ids"] for p in parts]).argsort()
    cat = {k: torch.cat([p[k] for p in parts])[order] for k in ("theta", "train_loss", "test_accuracy")}
    if len(order) != T:
        raise CorruptArtifactError(f"{directory}: shards hold {len(order)} heads for {T} tasks")
    files = {name.removesuffix(".safetensors"): checked(name, sha) for name, sha in manifest["files"].items()
             if name.endswith(".safetensors")}
    starts = torch.stack([files[stage1_file(m).removesuffix(".safetensors")]["theta"] for m in range(zoo_cfg.starts)])
    return Zoo(directory, zoo_cfg, HeadSpec.from_json(config["spec"]), tasks,
               config["class_names"], config["source"], cat["theta"], cat["train_loss"], cat["test_accuracy"],
               torch.tensor([t["universal_accuracy"] for t in manifest["tasks"]]),
               files["stage1"]["theta"], files["universal"]["theta"], files["task_text"], starts,
               torch.tensor([t.get("start", 0) for t in manifest["tasks"]]))
