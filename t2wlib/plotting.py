"""Figures and tables, written with their provenance (profile, seeds, commit, machine)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from . import provenance
from .cache import atomic_write, atomic_write_text
from .data import ImageSplit, balanced_indices


class FigureWriter:
    """Writes figures (PNG), tables (CSV + Markdown) and results (JSON) into one folder, each
    recorded in the folder's provenance.json with the profile and seeds that produced it."""

    def __init__(self, directory: str | os.PathLike, profile: str, seeds):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.profile, self.seeds = profile, tuple(seeds)
        self._started = time.perf_counter()

    def _record(self, name: str, **extra) -> None:
        provenance.record(self.directory, name, self.profile, self.seeds,
                          wall_s=time.perf_counter() - self._started, **extra)

    def figure(self, fig: plt.Figure, name: str, **extra) -> Path:
        path = self.directory / f"{name}.png"
        # The figure stays open so that a notebook shows it inline below the cell.
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight"))
        self._record(path.name, **extra)
        return path

    def table(self, df: pd.DataFrame, name: str, floatfmt: str = ".4g", **extra) -> Path:
        csv, md = self.directory / f"{name}.csv", self.directory / f"{name}.md"
        atomic_write_text(csv, df.to_csv(index=False))
        atomic_write_text(md, df.to_markdown(index=False, floatfmt=floatfmt) + "\n")
        self._record(csv.name, **extra)
        self._record(md.name, **extra)
        return csv

    def json(self, obj, name: str, **extra) -> Path:
        path = self.directory / f"{name}.json"
        atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))
        self._record(path.name, **extra)
        return path


def sample_grid(images: ImageSplit, per_class: int, seed: int = 0) -> plt.Figure:
    """A grid with one row per class: `per_class` images and the class name."""
    idx = balanced_indices(images.labels, per_class, seed)
    C = len(images.class_names)
    fig, axes = plt.subplots(C, per_class, figsize=(1.1 * per_class + 1.2, 1.1 * C), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    column = {c: 0 for c in range(C)}
    for i in idx:
        c = int(images.labels[i])
        ax = axes[c, column[c]]
        ax.imshow(images.image(int(i)), interpolation="nearest")
        column[c] += 1
    for c, name in enumerate(images.class_names):
        axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{images.dataset} ({images.split})", fontsize=10)
    fig.tight_layout()
    return fig


def similarity_heatmaps(embeddings: dict[str, torch.Tensor], class_names: list[str], title: str) -> plt.Figure:
    """Cosine-similarity heatmaps of class embeddings, one panel per text variant (e.g. prompts, NL)."""
    n = len(embeddings)
    fig, axes = plt.subplots(1, n, figsize=(0.45 * len(class_names) * n + 2, 0.45 * len(class_names) + 1.5),
                             squeeze=False)
    for ax, (variant, e) in zip(axes[0], embeddings.items()):
        e = torch.nn.functional.normalize(e.float(), dim=-1)
        sim = (e @ e.T).numpy()
        off = sim[~np.eye(len(sim), dtype=bool)]
        sns.heatmap(sim, ax=ax, xticklabels=class_names, yticklabels=class_names, cmap="viridis",
                    vmin=float(off.min()), vmax=1.0, square=True, cbar_kws={"shrink": 0.7})
        ax.set_title(f"{variant}: off-diagonal mean {off.mean():.2f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def zoo_accuracy_by_k(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Per dataset: test accuracy of trained task heads and of the Universal Model on the same tasks, by k."""
    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4), squeeze=False)
    for ax, (name, df) in zip(axes[0], tables.items()):
        long = pd.concat([df.assign(head="trained task head", accuracy=df.test_accuracy),
                          df.assign(head="Universal Model", accuracy=df.universal_accuracy)])
        sns.boxplot(long, x="k", y="accuracy", hue="head", ax=ax, fliersize=1.5, linewidth=0.8)
        ks = sorted(df.k.unique())
        ax.plot(range(len(ks)), [1 / k for k in ks], "k:", lw=1, label="chance (1/k)")
        ax.set_title(f"{name}: {len(df)} tasks", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def zoo_weight_projection(thetas: dict[str, torch.Tensor], tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """PCA of each zoo's flattened head weights (T, P), coloured by k, seen tasks as dots, unseen as crosses."""
    from sklearn.decomposition import PCA

    fig, axes = plt.subplots(1, len(thetas), figsize=(5.5 * len(thetas), 4.5), squeeze=False)
    for ax, (name, theta) in zip(axes[0], thetas.items()):
        df = tables[name]
        pca = PCA(n_components=2).fit(theta.numpy())
        xy = pca.transform(theta.numpy())
        for split, marker in (("seen", "o"), ("unseen", "x"), ("heldout", "^")):
            m = (df.split == split).to_numpy()
            if m.any():
                sc = ax.scatter(xy[m, 0], xy[m, 1], c=df.k[m], cmap="viridis", s=8, marker=marker, label=split,
                                vmin=df.k.min(), vmax=df.k.max(), linewidths=0.8)
        fig.colorbar(sc, ax=ax, label="k (classes in the task)")
        ev = pca.explained_variance_ratio_
        ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({ev[1]:.0%})")
        ax.set_title(f"{name}: zoo head weights", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(curves: dict[str, list[dict]], smooth: int = 20) -> plt.Figure:
    """Generator training: each loss term (L_diff, L_sym, L_adv, the discriminator's) against the
    step, one panel per dataset, a running mean over `smooth` steps."""
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4), squeeze=False)
    for ax, (name, records) in zip(axes[0], curves.items()):
        df = pd.DataFrame(records)
        for term, label in (("diff", "L_diff"), ("sym", "L_sym"), ("adv", "L_adv"), ("disc", "discriminator")):
            if term in df:
                ax.plot(df.step, df[term].rolling(smooth, min_periods=1).mean(), label=label, lw=1.2)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{name}: generator training", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def denoising_trajectories(trajectories: dict[str, pd.DataFrame], trained: dict[str, pd.Series]) -> plt.Figure:
    """Figure 3: accuracy of the x0-estimate against the sampling step, one line per task, one panel
    per dataset; each task's trained-head accuracy as a dotted line in the same colour.
    trajectories: per dataset, evaluate.trajectory_accuracy's frame; trained: per dataset, accuracy
    of the trained heads indexed by task id."""
    fig, axes = plt.subplots(1, len(trajectories), figsize=(6 * len(trajectories), 4), squeeze=False)
    for ax, (name, df) in zip(axes[0], trajectories.items()):
        colours = sns.color_palette("tab10", df.task.nunique())
        for colour, (task, g) in zip(colours, df.groupby("task", sort=False)):
            ax.plot(g.step, g.accuracy, color=colour, lw=1.1)
            ax.axhline(trained[name][task], color=colour, ls=":", lw=0.9)
        ax.set_xlabel("sampling step (DDPM; t = N - step)")
        ax.set_ylabel("test accuracy of the x0-estimate")
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}: {df.task.nunique()} unseen tasks (dotted: trained head)", fontsize=10)
    fig.tight_layout()
    return fig


def ablation_bars(table: pd.DataFrame, reference: float | None = None) -> plt.Figure:
    """Table 2 as a bar chart: unseen-task accuracy (mean ± std over seeds) per variant; the
    trained heads' accuracy as a dashed line when given."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1))
    ax.barh(table.variant, table.accuracy_mean, xerr=table.accuracy_std.fillna(0), color="tab:blue", alpha=0.8)
    if reference is not None:
        ax.axvline(reference, color="k", ls="--", lw=1, label="trained heads")
        ax.legend(fontsize=8, loc="lower right")
    lo = float((table.accuracy_mean - table.accuracy_std.fillna(0)).min())
    ax.set_xlim(max(0.0, lo - 0.05), 1.0)
    ax.invert_yaxis()
    ax.set_xlabel("mean unseen-task accuracy (± std over seeds)")
    fig.tight_layout()
    return fig
