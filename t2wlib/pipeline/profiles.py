"""Profiles: named presets of every size knob (docs/ARCHITECTURE.md §5), passed to notebooks by papermill."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .profile_checks import check_profile


@dataclass(frozen=True)
class Profile:
    """Every size knob of the pipeline; one instance per profile name."""

    name: str
    # Base datasets: the embedded ones on smoke/cpu, the paper's three on paper.
    datasets: tuple[str, ...]
    backbone: str
    text_encoder: str
    # Backbone input side in pixels. 112 on CPU: EfficientNet-Lite0 is several times faster there than
    # at 224 (benchmarks/results/bench_features.json) and the embedded images are 48 px or smaller.
    image_size: int
    # Images per class kept per split (None = all). Sub-sampling is stratified and seeded by
    # `data_seed`, independent of the experiment seeds, so every seed sees the same data.
    train_per_class: int | None
    test_per_class: int | None
    # Experiment seeds; results are averaged over them (paper: 42, 34, 3407).
    seeds: tuple[int, ...]
    # Hidden width r of the CLIP adapter; None = the rule of `for_dataset`, which keeps the paper's
    # classes per unit (16 units for 100-256 classes; 2 for a 10-class dataset; docs/ARCHITECTURE.md §3).
    hidden: int | None = None
    # A user's own datasets, "NAME=PATH" each (`t2w run --data`), registered as user-NAME (data/datasets.py).
    user_data: tuple[str, ...] = ()
    data_seed: int = 0
    # Feature-extraction batch size; "auto" device picks CUDA when present.
    batch_size: int = 64
    device: str = "auto"
    # Images shown per class in the 01_zoo sample grid.
    grid_per_class: int = 4
    # Model zoo (§4.1, App. B.3). Paper: 12,000 tasks, k ~ U{8, 32}, stage 1 one epoch, stage 2 32
    # epochs; the Universal Model (§4.2) Adam 3e-4 for 200 epochs. A 10-class dataset has only
    # 1,012 distinct tasks with 2 <= k <= 9, so the embedded profiles take k from 2 to 9. A dataset
    # with fewer classes gets these clamped by `for_dataset`.
    zoo_tasks: int = 12_000
    zoo_k: tuple[int, int] = (8, 32)
    # The paper's stage 1 is one epoch of CIFAR-100 (~390 Adam steps); one epoch of a small dataset
    # is too few steps for θ0*, which every head inherits, so the embedded profiles take 10 epochs.
    stage1_epochs: int = 1
    stage2_epochs: int = 32
    universal_epochs: int = 200
    zoo_lr: float = 1e-3  # stage 1 and 2 (the paper does not give alpha_sub)
    universal_lr: float = 3e-4
    # Minibatch sizes (not given by the paper). The embedded zoos use 32 for 10 epochs (about as many
    # Adam steps as 128 for 32 epochs, in less time); the Universal Model keeps its own batch size and
    # epochs: a baseline must not be weakened by the zoo's budget.
    zoo_batch_size: int = 128
    universal_batch_size: int = 128
    # Classes left out of every seen task (0 = off), for the held-out-classes evaluation.
    zoo_held_out_classes: int = 0
    zoo_shard_size: int = 128
    # Stage-1 runs every task is fine-tuned from (1: the paper's zoo; > 1: a multi-solution zoo).
    zoo_starts: int = 1
    # Generator (§3, §4.1): Adam 4e-4, batch 32, 5-epoch warmup, clip 0.1, λ1 = 0.1 are TrainConfig's
    # defaults (the paper's). The paper gives neither its epoch count nor λ2.
    dit: str = "paper"
    block_size: int = 32
    tokenizer_mode: str = "minmax"
    # tokenizer_mode "pca-global" or "pca" (the compact token space, generator/pca_tokenizer.py): principal
    # components kept, at most the seen tasks / tasks_per_component (0: no such cap), since beyond about
    # that many directions a small zoo's trailing ones hold its task-to-task noise.
    gen_components: int = 512
    tasks_per_component: int = 0
    # A linear map v_c -> x0 tokens added to the denoiser's x0 estimate, started from ridge regression
    # (generator/denoiser.py); x0-prediction only.
    text_path: bool = False
    # What the denoiser is conditioned on: "pooled" (the task text vector v_c, the paper's) or
    # "classes" (the set of the task's class embeddings, one token each, Tina's; a DiT only).
    condition: str = "pooled"
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"
    # eq. 9 predicts ε. The embedded zoos are tightly clustered (all heads fine-tuned from one θ0*),
    # and ε-prediction amplifies its error by (1 - abar)/abar in x0, so the embedded profiles predict
    # x0, as the authors' public code does.
    prediction: str = "eps"
    gen_epochs: int = 200
    # Or a step budget (None: gen_epochs decides): the epochs then follow from the seen tasks a
    # generator trains on (config.train_config), the same budget for every zoo size.
    gen_steps: int | None = None
    gen_batch_size: int = 32
    lambda_sym: float = 0.1
    lambda_adv: float = 0.01
    # Weight of the task loss (the decoded x0 estimate's cross-entropy on its seen task's training
    # samples, heads.adapter.TaskLossTerm), for the generator and the hypernetwork; 0 = off.
    lambda_task: float = 0.0
    # Samples per batch that L_sym is computed on (None = the whole batch; TrainConfig.sym_batch).
    sym_batch: int | None = None
    # Min-SNR-γ loss weighting (0 = off; Hang et al. use γ = 5) and noise draws per text per step.
    min_snr: float = 0.0
    noise_draws: int = 1
    # App. A's alternative to L_sym: train on randomly permuted zoo heads (04_ablation).
    gen_augment: bool = False
    text_dropout: float = 0.0
    # Seen tasks held out of the generator's training for choosing its settings (generator.seen_split).
    gen_validation_tasks: int = 0
    checkpoint_every: int = 500
    # Sampling for routine generation (DDPM-1000 where the paper uses it); DDIM-20 against DDPM-1000
    # in speed and accuracy: benchmarks/results/bench_generate.json.
    ddim_steps: int = 20
    # Evaluation (03_evaluate): seen tasks scored (the first N seen task ids; every unseen task is
    # scored), tasks per dataset whose DDPM trajectory is recorded (Figure 3), and the classes left
    # out of a second, separate zoo for the held-out-classes split (0 = skip it).
    eval_seen_tasks: int = 200
    trajectory_tasks: int = 10
    heldout_split_classes: int = 0
    # Tasks of that held-out-classes zoo (None = zoo_tasks): it needs only enough for a generator.
    heldout_zoo_tasks: int | None = None
    # Seeds its generator and hypernetwork train with (() = the profile's seeds).
    heldout_seeds: tuple[int, ...] = ()
    # Figure 3 scores the x0-estimate every this many sampling steps (and the last one).
    trajectory_stride: int = 1
    # The step budget and DiT size of Figure 3's generator of the other prediction target (None / "":
    # gen_steps / dit), so that ε can be shown trained to its plateau where it learns slower than x0.
    figure3_steps: int | None = None
    figure3_dit: str = ""
    # The convergence study's curves (02_train, experiments/convergence.py): the step budgets the
    # profile's generator and its ε twin are scored at (() = no study), at each DiT width named.
    convergence_steps: tuple[int, ...] = ()
    convergence_dits: tuple[str, ...] = ()
    # Ablation (04_ablation, Table 2): the dataset ("" = the first), generator epochs (None =
    # gen_epochs) and seeds (() = the profile's) every variant trains with.
    # Every variant also leaves `ablation_validation_tasks` seen tasks out of its training and is
    # scored on them: the validation column that the profiles' generator settings are chosen on.
    ablation_dataset: str = ""
    ablation_epochs: int | None = None
    ablation_steps: int | None = None  # with gen_steps: the variants' step budget (None = gen_steps)
    ablation_seeds: tuple[int, ...] = ()
    ablation_validation_tasks: int = 100
    # Fusion (05_fusion, Table 3): classes per task (paper: two disjoint 8-class tasks; for_dataset
    # halves it where the union would leave the zoo's k range, e.g. two of 4 on 10 classes) and pairs.
    fusion_k: int = 8
    fusion_pairs: int = 20
    # Initialisation (06_initialization, Table 4): unseen tasks per dataset trained from each init
    # (paper: 50 epochs, Adam 3e-4, cosine), few-shot sizes K (examples per class), and Reptile's
    # meta-iterations and tasks per iteration (one inner epoch each, the zoo's stage-2 optimiser).
    init_tasks: int = 20
    init_epochs: int = 50
    init_lr: float = 3e-4
    init_shots: tuple[int, ...] = (10, 100)
    reptile_iterations: int = 50
    reptile_meta_batch: int = 16
    # Loss landscape (08_loss_landscape, Figure 5): grid points per axis over α, β in [-4, 4].
    landscape_grid: int = 50
    # Enhancement (07_enhancement, Figure 6): unseen tasks retrained to half their epochs, and the
    # diffusion steps t (of N) they are noised to before T2W denoises them.
    enhancement_tasks: int = 55
    enhancement_t: tuple[int, ...] = (50, 100, 200, 400)
    # Grad-CAM (09_gradcam, Figure 4): test images of one unseen task per dataset, and the denoising
    # steps (fractions of N) whose x0-estimate heads are shown (paper: steps 900 ... 1000 of 1000).
    gradcam_images: int = 4
    gradcam_steps: tuple[float, ...] = (0.9, 0.925, 0.95, 0.975, 1.0)
    # Diffusion against regression (10_diffusion_vs_regression), on the profile's first dataset: a
    # zoo of `solution_tasks` tasks, each fine-tuned from `solution_starts` θ0*'s, whose start-0 rows
    # are the single-solution zoo; every generator and hypernetwork there trains `solution_steps`
    # steps (a step budget, so the larger multi-solution zoo gets no more); T2W and the noise baseline
    # draw `solution_samples` heads per text; the noise baseline's σ are fractions of the seen heads'
    # per-weight standard deviation, and the average baseline takes the nearest `solution_neighbours`.
    solution_tasks: int = 1000
    solution_starts: int = 4
    solution_steps: int = 1000
    solution_samples: int = 4
    solution_noise: tuple[float, ...] = (0.1, 0.5)
    solution_neighbours: int = 4


PROFILES: dict[str, Profile] = {
    # The whole pipeline, all notebooks, in <= 10 minutes on 2 CPU cores (CI).
    "smoke": Profile(
        name="smoke",
        # emoji-tiny: the many-class dataset's 20-class version, so CI runs its code path.
        datasets=("emoji-tiny", "fashion-mnist"),
        backbone="efficientnet-lite0",
        text_encoder="minilm",
        image_size=64,
        train_per_class=40,
        test_per_class=20,
        seeds=(42,),
        grid_per_class=2,
        zoo_tasks=120,
        zoo_k=(2, 9),
        stage1_epochs=10,
        stage2_epochs=4,
        universal_epochs=20,
        zoo_batch_size=32,
        zoo_shard_size=64,
        dit="tiny",
        block_size=16,
        tokenizer_mode="pca-global",
        gen_components=64,
        tasks_per_component=10,
        prediction="x0",
        text_path=True,
        gen_epochs=2,
        # The held-out-classes zoo has ~25 seen tasks on smoke: batches of 16 fit it.
        gen_batch_size=16,
        ddim_steps=10,
        eval_seen_tasks=40,
        trajectory_tasks=3,
        heldout_split_classes=2,
        fusion_k=4,
        fusion_pairs=3,
        gradcam_images=2,
        enhancement_tasks=6,
        enhancement_t=(100, 400),
        ablation_validation_tasks=16,
        convergence_steps=(5, 10, 20, 40),
        convergence_dits=("tiny",),
        init_tasks=3,
        init_epochs=3,
        reptile_iterations=2,
        reptile_meta_batch=4,
        landscape_grid=11,
        solution_tasks=30,
        solution_steps=10,
        solution_samples=3,
    ),
    # The embedded default at a size with meaningful numbers (what each part takes on 2 CPU cores:
    # the README and figures/cpu/RESULTS.md).
    "cpu": Profile(
        name="cpu",
        # emoji (300 rendered classes, the paper's regime: figures/cpu/emoji_regime.md) first;
        # Fashion-MNIST (10 classes) shows the small-dataset end of the class-count rule.
        datasets=("emoji", "fashion-mnist"),
        backbone="efficientnet-lite0",
        text_encoder="minilm",
        image_size=112,
        train_per_class=500,
        test_per_class=200,
        seeds=(42, 34, 3407),
        # 4,000 tasks of 8-32 classes on emoji; Fashion-MNIST's 10 classes allow 1,012 tasks of 2-9
        # (profiles.for_dataset).
        zoo_tasks=4000,
        zoo_k=(8, 32),
        stage1_epochs=10,
        stage2_epochs=10,
        zoo_batch_size=32,
        # Chosen on the validation seen tasks of both datasets by the convergence study
        # (figures/cpu/convergence*.md): the compact token space (principal components under one
        # global scale, at most one per 10 seen tasks: 320 on emoji, 81 on Fashion-MNIST, in tokens
        # of 32 within the DiT's width 128), x0-prediction with the linear text path, and the budget
        # where its curve is already flat.
        dit="cpu-small",
        block_size=32,
        tokenizer_mode="pca-global",
        gen_components=512,
        tasks_per_component=10,
        prediction="x0",
        text_path=True,
        # L_diff alone: on emoji Table 2's validation column (figures/cpu/loss_selection.json) puts
        # L_adv within one seed's noise of it and L_sym below it.
        lambda_sym=0.0,
        lambda_adv=0.0,
        sym_batch=8,
        # One step budget on any zoo (the epochs follow from its seen tasks: config.train_config), for
        # the generators, the hypernetworks and Table 2's variants alike, for the pipeline's time budget.
        gen_steps=600,
        heldout_split_classes=2,
        # The held-out-classes zoos are smaller, for the time budget; their models train the same steps
        # on fewer seen tasks (figures/cpu/heldout.md gives the counts).
        heldout_zoo_tasks=400,
        heldout_seeds=(42,),
        trajectory_stride=10,
        # The convergence study's four budgets, the largest 30x gen_steps, at widths 32 and 128.
        convergence_steps=(600, 2400, 9600, 18000),
        convergence_dits=("tiny", "cpu-small"),
        # Figure 3's ε generator: the study's ε twin at width 128 (convergence.eps_twin: every
        # component whitened), the same definition, so trained once, at the study's largest budget.
        figure3_steps=18000,
        figure3_dit="cpu-small",
        ablation_seeds=(42,),
        # The paper's two 8-class tasks; two of 4 on a 10-class dataset (for_dataset).
        fusion_k=8,
        init_tasks=12,
        # 10_diffusion_vs_regression: solution_tasks x solution_starts heads.
        solution_tasks=192,
        solution_steps=400,
    ),
    # The paper's stack (CUDA + internet): §4.1 and App. B.
    "paper": Profile(
        name="paper",
        datasets=("cifar100", "caltech256", "tinyimagenet"),
        backbone="resnet18",
        text_encoder="clip-vit-b-32",
        image_size=224,
        train_per_class=None,
        test_per_class=None,
        seeds=(42, 34, 3407),
        batch_size=256,
    ),
}


# The browser page's generators (`t2w demo`, t2wlib/demo/), built by 01_zoo and 02_train in at most 10
# minutes on 2 CPU cores (benchmarks/results/bench_demo.json): the cpu profile, so its generator definition,
# on smaller zoos (fewer images per class, fewer tasks, one seed), without the held-out-classes zoo and the
# convergence curves. Its numbers are not the compendium's results; `make run`'s cpu generators are
# offered first when they exist.
PROFILES["demo"] = dataclasses.replace(PROFILES["cpu"], name="demo", train_per_class=32, test_per_class=8, seeds=(42,),
                                       zoo_tasks=500, heldout_split_classes=0, convergence_steps=(),
                                       convergence_dits=(), eval_seen_tasks=100)

# for_dataset's rule for r: one hidden unit per this many classes, between 2 and 16 units.
CLASSES_PER_UNIT = 6
HIDDEN_RANGE = (2, 16)
# for_dataset's rule for the smallest task: at most one class in this many of the dataset's.
CLASSES_PER_MIN_K = 5
# The held-out-classes zoo needs enough classes left for its seen tasks.
MIN_CLASSES_HELDOUT = 8
# for_dataset's rule for the validation seen tasks of Table 2 and the convergence study: at most
# one task in this many, so that a small dataset's zoo keeps seen tasks to train on.
TASKS_PER_VALIDATION_TASK = 5


def for_dataset(profile: Profile, num_classes: int) -> Profile:
    """The profile's settings for one dataset of `num_classes` classes, by one rule for every
    dataset, built-in or a user's (fields the user set explicitly are kept when they fit):
    - r (`hidden`, when None): round(C / CLASSES_PER_UNIT) within HIDDEN_RANGE: 2 for 10 classes,
      16 for 100-256 (the paper's), so a universal head stays capacity-limited as in the paper;
    - the k range: k_max clamped to C - 1 (a task is a strict subset of the classes), k_min to
      C // CLASSES_PER_MIN_K (so a 10-class dataset keeps tasks of 2-9 where the paper's 100-class
      ones take 8-32), and both to at least 2;
    - tasks: at most the number of distinct tasks that k range allows;
    - the held-out-classes zoo: off below MIN_CLASSES_HELDOUT classes;
    - the validation seen tasks of Table 2 and the convergence study (`ablation_validation_tasks`):
      at most one task in TASKS_PER_VALIDATION_TASK;
    - fusion: two disjoint tasks whose union still lies in the k range."""
    from ..data.subtasks import count_tasks

    if num_classes < 3:
        raise ValueError(f"a dataset of {num_classes} class(es) has no sub-tasks; at least 3 classes are needed")
    lo, hi = HIDDEN_RANGE
    hidden = profile.hidden if profile.hidden is not None else min(hi, max(lo, round(num_classes / CLASSES_PER_UNIT)))
    k_max = min(profile.zoo_k[1], num_classes - 1)
    k_min = min(max(2, profile.zoo_k[0]), max(2, num_classes // CLASSES_PER_MIN_K), k_max)
    tasks = min(profile.zoo_tasks, count_tasks(num_classes, k_min, k_max))
    heldout = profile.heldout_split_classes if num_classes >= MIN_CLASSES_HELDOUT else 0
    validation = min(profile.ablation_validation_tasks, tasks // TASKS_PER_VALIDATION_TASK)
    return dataclasses.replace(profile, hidden=hidden, zoo_k=(k_min, k_max), zoo_tasks=tasks,
                               heldout_split_classes=heldout, fusion_k=max(1, min(profile.fusion_k, k_max // 2)),
                               ablation_validation_tasks=validation)


def heldout_zoo_profile(profile: Profile) -> Profile:
    """The profile of the held-out-classes zoo: `heldout_split_classes` classes never in a seen task,
    and the models trained on it: `heldout_seeds`."""
    if profile.heldout_split_classes <= 0:
        raise ValueError(f"profile {profile.name!r} has heldout_split_classes = {profile.heldout_split_classes}: no held-out zoo")
    tasks = profile.zoo_tasks if profile.heldout_zoo_tasks is None else min(profile.zoo_tasks, profile.heldout_zoo_tasks)
    return dataclasses.replace(profile, zoo_held_out_classes=profile.heldout_split_classes, zoo_tasks=tasks,
                               seeds=profile.heldout_seeds or profile.seeds)


def solution_zoo_profile(profile: Profile) -> Profile:
    """The profile of the multi-solution zoo (10_diffusion_vs_regression) and of the models trained
    on it: `solution_tasks` tasks (at most the zoo's) from `solution_starts` θ0*'s, no held-out
    classes, the `solution_steps` budget, and no validation tasks held out of training (nothing is
    chosen there; with several rows per task they would share texts with training rows)."""
    if profile.solution_starts < 2:
        raise ValueError(f"solution_starts = {profile.solution_starts}: a multi-solution zoo needs at least 2 starts")
    return dataclasses.replace(profile, zoo_tasks=min(profile.zoo_tasks, profile.solution_tasks),
                               zoo_starts=profile.solution_starts, zoo_held_out_classes=0,
                               gen_steps=profile.solution_steps,
                               gen_validation_tasks=0)


def get_profile(name: str, **overrides) -> Profile:
    """The named profile, with optional field overrides; unknown names and fields raise."""
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown profile field(s) {unknown}; fields: {', '.join(sorted(fields))}")
    profile = dataclasses.replace(PROFILES[name], **overrides)
    check_profile(profile)  # every field in its range, before any work
    return profile
