"""Figures and tables, written with their provenance (profile, seeds, commit, machine)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import textwrap
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..core.files import atomic_write, atomic_write_text
from ..data.datasets import balanced_indices
from ..data.image_split import ImageSplit
from . import provenance

# seaborn is imported inside the functions that draw with it: it (with scipy.stats) costs a second at every
# kernel start, and most notebooks draw nothing with it.


class FigureWriter:
    """Writes figures (PNG), tables (CSV + Markdown) and results (JSON) into one folder, each
    recorded in the folder's provenance.json with the profile and seeds that produced it."""

    def __init__(self, directory: str | os.PathLike, profile: str, seeds, run: dict | None = None):
        """`run`: what else every output's provenance records (the notebook, the profile overrides)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.profile, self.seeds, self.run = profile, tuple(seeds), dict(run or {})
        self._started = time.perf_counter()

    def _record(self, name: str, **extra) -> None:
        provenance.record(self.directory, name, self.profile, self.seeds,
                          wall_s=time.perf_counter() - self._started, **self.run, **extra)

    def figure(self, fig: plt.Figure, name: str, **extra) -> Path:
        path = self.directory / f"{name}.png"
        # The figure stays open so that a notebook shows it inline below the cell.
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight"))
        self._record(path.name, **extra)
        return path

    def table(self, df: pd.DataFrame, name: str, floatfmt: str = ".4g", markdown: bool = True,
              compressed: bool = False, **extra) -> Path:
        """CSV, and with `markdown` a Markdown copy for reading (off for long per-task tables); `compressed`:
        the CSV gzipped as name.csv.gz, with no time stamp or file name inside, so a re-run writes the same bytes."""
        csv, md = self.directory / f"{name}.csv{'.gz' if compressed else ''}", self.directory / f"{name}.md"
        if compressed:
            def write(tmp: Path) -> None:
                with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                    packed.write(df.to_csv(index=False).encode())
            atomic_write(csv, write)
        else:
            atomic_write_text(csv, df.to_csv(index=False))
        self._record(csv.name, **extra)
        if markdown:
            atomic_write_text(md, df.to_markdown(index=False, floatfmt=floatfmt) + "\n")
            self._record(md.name, **extra)
        return csv

    def json(self, obj, name: str, **extra) -> Path:
        path = self.directory / f"{name}.json"
        atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))
        self._record(path.name, **extra)
        return path


# Many-class datasets (300 emoji) are shown by a spread of their classes: a figure of every class is
# tens of megabytes, in the repository and in every executed notebook.
GRID_MAX_CLASSES = 30
HEATMAP_LABELLED_CLASSES = 40  # above this, similarity heatmaps drop their tick labels and shrink the cells


def sample_grid(images: ImageSplit, per_class: int, seed: int = 0, max_classes: int = GRID_MAX_CLASSES) -> plt.Figure:
    """A grid with one row per class: `per_class` images and the class name; with more than
    `max_classes` classes, `max_classes` of them evenly spaced through the class list."""
    C = len(images.class_names)
    shown = [round(i * (C - 1) / (max_classes - 1)) for i in range(max_classes)] if C > max_classes else list(range(C))
    row = {c: r for r, c in enumerate(shown)}
    idx = [i for i in balanced_indices(images.labels, per_class, seed) if int(images.labels[i]) in row]
    fig, axes = plt.subplots(len(shown), per_class, figsize=(1.1 * per_class + 1.2, 1.1 * len(shown)), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    column = {c: 0 for c in shown}
    for i in idx:
        c = int(images.labels[i])
        axes[row[c], column[c]].imshow(images.image(int(i)), interpolation="nearest")
        column[c] += 1
    for c in shown:
        axes[row[c], 0].set_ylabel(images.class_names[c], rotation=0, ha="right", va="center", fontsize=9)
    of = f", {len(shown)} of {C} classes" if len(shown) < C else ""
    fig.suptitle(f"{images.dataset} ({images.split}{of})", fontsize=10)
    fig.tight_layout()
    return fig


def similarity_heatmaps(embeddings: dict[str, torch.Tensor], class_names: list[str], title: str) -> plt.Figure:
    """Cosine-similarity heatmaps of class embeddings, one panel per text variant (e.g. prompts, NL)."""
    import seaborn as sns
    n, C = len(embeddings), len(class_names)
    labelled = C <= HEATMAP_LABELLED_CLASSES
    side = 0.45 * min(C, HEATMAP_LABELLED_CLASSES)  # inches per panel
    fig, axes = plt.subplots(1, n, figsize=(side * n + 2, side + 1.5), squeeze=False)
    for ax, (variant, e) in zip(axes[0], embeddings.items()):
        e = torch.nn.functional.normalize(e.float(), dim=-1)
        sim = (e @ e.T).numpy()
        off = sim[~np.eye(len(sim), dtype=bool)]
        ticks = class_names if labelled else False
        sns.heatmap(sim, ax=ax, xticklabels=ticks, yticklabels=ticks, cmap="viridis",
                    vmin=float(off.min()), vmax=1.0, square=True, cbar_kws={"shrink": 0.7})
        ax.set_title(f"{variant}: off-diagonal mean {off.mean():.2f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def zoo_accuracy_by_k(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Per dataset: test accuracy of trained task heads and of the Universal Model on the same tasks, by k."""
    import seaborn as sns
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


def _pca2(x: np.ndarray):
    """A 2-component PCA fitted on rows x (n, P). For these shapes sklearn picks its randomized
    solver, and when the second component is weak its answer varies from call to call: seeded, so
    that a figure is the same on every run."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit(x)


def zoo_weight_projection(thetas: dict[str, torch.Tensor], tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """PCA of each zoo's flattened head weights (T, P), coloured by k, seen tasks as dots, unseen as crosses."""
    fig, axes = plt.subplots(1, len(thetas), figsize=(5.5 * len(thetas), 4.5), squeeze=False)
    for ax, (name, theta) in zip(axes[0], thetas.items()):
        df = tables[name]
        pca = _pca2(theta.numpy())
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


def convergence(curves: pd.DataFrame, references: dict[str, float]) -> plt.Figure:
    """The convergence study: validation accuracy (left) and validation L_diff (right) against the
    training step, one line per model (curves: model, step, accuracy[, validation_loss]), the
    reference heads' accuracies as dashed horizontal lines."""
    import seaborn as sns
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(15, 4.5))
    colours = dict(zip(curves.model.unique(), sns.color_palette("tab10", curves.model.nunique())))
    for model, part in curves.groupby("model", sort=False):
        part = part.sort_values("step")
        acc.plot(part.step, part.accuracy, marker="o", color=colours[model], label=model)
        if "validation_loss" in part and part.validation_loss.notna().any():
            loss.plot(part.step, part.validation_loss, marker="o", color=colours[model], label=model)
    greys = sns.color_palette("Greys_r", len(references) + 1)
    for value, colour in zip(references.values(), greys):
        acc.axhline(value, ls="--", lw=1, color=colour)
    for ax in (acc, loss):
        ax.set_xscale("log")
        ax.set_xlabel("training steps (batch 32)")
    acc.set_ylabel("accuracy on validation seen tasks (DDIM)")
    loss.set_ylabel("validation L_diff (fixed t, ε draws)")
    loss.set_yscale("log")
    spread_labels(acc, references, greys)
    acc.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.subplots_adjust(wspace=0.5)  # room for the reference labels beside the left panel
    return fig


def spread_labels(ax: plt.Axes, values: dict[str, float], colours, gap: float = 0.045) -> list[float]:
    """Name horizontal reference lines (name -> y value) beside the axes' right edge, each label at its
    line's height unless that would bring two labels closer than `gap` (a fraction of the axes' height):
    then labels move apart, in their lines' order, a thin line joining each to its line. Reference lines
    often sit within a point of each other (ridge and its projected ceiling), where labels at the lines'
    own heights would overprint. Returns the labels' heights in axes fractions."""
    low, high = ax.get_ylim()
    order = sorted(values, key=values.get)
    wanted = [(values[name] - low) / (high - low) for name in order]
    placed = []
    for y in wanted:  # upward pass: at least `gap` above the label below
        placed.append(max(y, placed[-1] + gap) if placed else y)
    for i in range(len(placed) - 1, -1, -1):  # downward pass: none above the top, at least `gap` below the one above
        placed[i] = min(placed[i], 1.0 if i == len(placed) - 1 else placed[i + 1] - gap)
    colour_of = dict(zip(values, colours))
    for name, y, target in zip(order, placed, wanted, strict=True):
        ax.annotate(name, xy=(1, target), xycoords="axes fraction", xytext=(1.02, y), textcoords="axes fraction",
                    fontsize=7, color=colour_of[name], va="center",
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": colour_of[name]})
    return [placed[order.index(name)] for name in values]


def denoising_trajectories(trajectories: dict[str, pd.DataFrame], trained: dict[str, pd.Series]) -> plt.Figure:
    """Figure 3: accuracy of the x0-estimate against the sampling step, one line per task, one panel
    per key (a dataset, or a dataset and a generator), two panels a row; each task's trained-head
    accuracy as a dotted line in the same colour.
    trajectories: per key, figure3.trajectory_accuracy's frame; trained: per key, accuracy of the
    trained heads indexed by task id."""
    import seaborn as sns
    cols = min(2, len(trajectories))
    rows = -(-len(trajectories) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(trajectories):]:
        ax.set_visible(False)
    for ax, (name, df) in zip(axes.flat, trajectories.items()):
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
    """Table 2 as a bar chart: per variant, accuracy (mean ± std over seeds) on the validation seen
    tasks and on the unseen tasks; the trained heads' unseen accuracy as a dashed line when given."""
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(table) + 1))
    y, height = np.arange(len(table)), 0.38
    for offset, prefix, label, color in ((-height / 2, "validation_", "validation (seen, held out)", "tab:gray"),
                                         (height / 2, "", "unseen (test)", "tab:blue")):
        ax.barh(y + offset, table[f"{prefix}accuracy_mean"], height, xerr=table[f"{prefix}accuracy_std"].fillna(0),
                color=color, alpha=0.8, label=label)
    if reference is not None:
        ax.axvline(reference, color="k", ls="--", lw=1, label="trained heads (unseen)")
    lows = [table[f"{p}accuracy_mean"] - table[f"{p}accuracy_std"].fillna(0) for p in ("validation_", "")]
    ax.set_xlim(max(0.0, float(min(low.min() for low in lows)) - 0.05), 1.0)
    ax.set_yticks(y, table.variant)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("mean task accuracy (± std over seeds)")
    fig.tight_layout()
    return fig


def gradcam_grid(images: np.ndarray, overlays: dict[str, np.ndarray], row_labels: list[str], title: str) -> plt.Figure:
    """Figure 4: one row per image (n, S, S, 3) in [0, 1], the image then one Grad-CAM overlay
    (n, S, S, 3) uint8 per column label (e.g. denoising steps)."""
    n, cols = len(images), 1 + len(overlays)
    # A task's class list can run to hundreds of characters: wrapped to the grid's width (about
    # 14 characters per inch at 9 pt), so that the title does not widen the saved figure.
    title = textwrap.fill(title, width=max(40, int(14 * 1.6 * cols)))
    lines = title.count("\n") + 1
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n + 0.25 + 0.15 * lines), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i])
        axes[i, 0].set_ylabel(row_labels[i], fontsize=7)
        for j, (label, maps) in enumerate(overlays.items(), start=1):
            axes[i, j].imshow(maps[i])
            if i == 0:
                axes[i, j].set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def enhancement_scatter(scores: dict[str, pd.DataFrame]) -> plt.Figure:
    """Figure 6: accuracy after vs before enhancement, one point per task, one panel per (dataset, t),
    with the diagonal (above it: enhancement helped)."""
    panels = [(name, t, g) for name, df in scores.items() for t, g in df.groupby("t") if t > 0]
    cols = max(1, len({t for _, t, _ in panels}))
    rows = len(scores)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, t, g) in zip(axes.flat, panels):
        ax.scatter(g.acc_before, g.acc_after, s=10, alpha=0.7)
        lo = float(min(g.acc_before.min(), g.acc_after.min()))
        ax.plot([lo, 1], [lo, 1], "k--", lw=0.8)
        ax.set_title(f"{name}, t = {t}: {(g.acc_after > g.acc_before).mean():.0%} improved", fontsize=8)
        ax.set_xlabel("before (half-trained)", fontsize=8)
        ax.set_ylabel("after enhancement", fontsize=8)
    fig.tight_layout()
    return fig


def init_curves(curves: dict[str, pd.DataFrame], trained: dict[str, float]) -> plt.Figure:
    """Table 4's learning curves: mean test accuracy over tasks against the epoch, one line per init,
    one panel per dataset; the trained zoo heads' mean as a dashed line."""
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4), squeeze=False)
    for ax, (name, df) in zip(axes[0], curves.items()):
        for init, g in df.groupby("init", sort=False):
            mean = g.groupby("epoch").test_accuracy.mean()
            ax.plot(mean.index, mean.to_numpy(), label=init, lw=1.8 if init.startswith("T2W") else 1.1)
        ax.axhline(trained[name], color="k", ls="--", lw=0.8, label="trained zoo heads")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean test accuracy")
        ax.set_title(f"{name}: training from each init", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def landscapes(grids: dict[str, torch.Tensor], alphas: torch.Tensor, betas: torch.Tensor, title: str) -> plt.Figure:
    """Figure 5: for each init (name -> loss grid Z (len(alphas), len(betas))), a 3-D surface (top)
    and a contour plot (bottom) of log10 Z around the trained solution (α = β = 0)."""
    fig = plt.figure(figsize=(4.6 * len(grids), 8.4))
    A, B = np.meshgrid(alphas.numpy(), betas.numpy(), indexing="ij")
    lo = min(float(z.min()) for z in grids.values())
    hi = max(float(z.max()) for z in grids.values())
    levels = np.linspace(np.log10(lo), np.log10(hi), 25)
    for i, (name, Z) in enumerate(grids.items()):
        logz = np.log10(Z.numpy())
        ax = fig.add_subplot(2, len(grids), i + 1, projection="3d")
        ax.plot_surface(A, B, logz, cmap="viridis", linewidth=0, antialiased=True)
        ax.set_title(f"{name} init", fontsize=9)
        ax.set_xlabel("α (δ1)", fontsize=8)
        ax.set_ylabel("β (δ2)", fontsize=8)
        ax.set_zlabel("log10 loss", fontsize=8)
        ax2 = fig.add_subplot(2, len(grids), len(grids) + i + 1)
        cs = ax2.contour(A, B, logz, levels=levels, cmap="viridis")
        ax2.plot(0, 0, "r*", ms=8)
        ax2.set_xlabel("α (δ1)", fontsize=8)
        ax2.set_ylabel("β (δ2)", fontsize=8)
        fig.colorbar(cs, ax=ax2, label="log10 loss")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def accuracy_vs_novelty(summary: pd.DataFrame) -> plt.Figure:
    """10_diffusion_vs_regression: one point per method, accuracy on unseen tasks against novelty
    (distance to the nearest seen head after alignment, over a trained head's; symmetric-log axis,
    since a copy sits at 0 and the Universal Model far right), one panel per zoo, one colour and
    marker per method throughout."""
    zoos, methods = list(dict.fromkeys(summary.zoo)), list(dict.fromkeys(summary.method))
    colours, markers = plt.get_cmap("tab20"), "oXsD^vP*<>ph"
    fig, axes = plt.subplots(1, len(zoos), figsize=(5.5 * len(zoos) + 2.5, 4.6), squeeze=False, sharey=True)
    for ax, zoo_label in zip(axes[0], zoos):
        rows = summary[summary.zoo == zoo_label].set_index("method")
        for i, method in enumerate(methods):
            if method in rows.index:
                ax.scatter(rows.novelty[method], 100 * rows.accuracy[method], s=55, color=colours(i % 20),
                           marker=markers[i % len(markers)], edgecolors="black", linewidths=0.5, label=method)
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(0, 2 * max(1.0, summary.novelty.max()))
        ax.set_xlabel("novelty: nearest seen head's distance / a trained head's")
        ax.set_title(f"{zoo_label} zoo", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy on unseen tasks (%)")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.collections}
    fig.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def solution_basins(seen_heads: torch.Tensor, seen_start: torch.Tensor, starts: torch.Tensor,
                    task_heads: dict[str, torch.Tensor], title: str) -> plt.Figure:
    """10_diffusion_vs_regression: a 2-D PCA of raw head weights, fitted on a multi-solution zoo's seen
    heads (T, P) coloured by their start (seen_start (T,)), its θ0*'s (M, P) as squares, and the heads
    (S, P) each method gives for one text (task_heads), as larger markers."""
    pca = _pca2(seen_heads.numpy())
    fig, ax = plt.subplots(figsize=(7, 5.5))
    colours = plt.get_cmap("tab10")
    xy = pca.transform(seen_heads.numpy())
    for m in range(len(starts)):
        sel = (seen_start == m).numpy()
        ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.25, color=colours(m), label=f"seen heads, start {m}")
    s_xy = pca.transform(starts.numpy())
    ax.scatter(s_xy[:, 0], s_xy[:, 1], s=90, marker="s", c=[colours(m) for m in range(len(starts))],
               edgecolors="black", label="θ0* of each start")
    # Methods in colours apart from the starts' (tab10), so that a marker's colour never reads as a basin.
    styles = zip(itertools.cycle("*XPD^v"), itertools.cycle(["black", "white", "gold", "magenta", "cyan", "grey"]))
    for (label, theta), (marker, colour) in zip(task_heads.items(), styles):
        h = pca.transform(theta.numpy())
        ax.scatter(h[:, 0], h[:, 1], s=110, marker=marker, color=colour, edgecolors="black", linewidths=0.6,
                   label=label)
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
