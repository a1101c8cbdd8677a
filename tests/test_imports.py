"""The library's layering (docs/ARCHITECTURE.md §1): every import points down or sideways in one order
of layers, there is no import cycle, and the shipped text -> classifier path imports no zoo,
training, experiment or pipeline code, nor scipy.

Every import counts: at the top of a module, inside a function (lazy) and under TYPE_CHECKING."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "t2wlib"

# Lowest first. A module is placed by its longest matching prefix; it may import its own layer and
# the layers below, never a layer above.
LAYERS = [
    ("core",),
    ("encoders",),
    ("data",),
    ("heads",),
    ("zoo",),
    ("generator",),
    ("methods", "classifier"),
    ("pipeline.profiles", "pipeline.profile_checks", "pipeline.overrides", "pipeline.config"),
    ("experiments",),
    ("pipeline", "demo"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in LIB.rglob("*.py") if p.name != "__init__.py"}
PACKAGES = {module_name(p) for p in LIB.rglob("__init__.py")} - {""}


def layer(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"t2wlib.{module} is in no layer; add it to LAYERS")
    return rank


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The t2wlib modules an ImportFrom names (relative or absolute), without the t2wlib prefix."""
    if node.level:
        base = module.split(".")[:-node.level] if node.level <= module.count(".") + 1 else None
        if base is None:
            raise AssertionError(f"t2wlib.{module}: relative import beyond the package")
        target = ".".join([*base, node.module] if node.module else base)
    elif node.module and (node.module == "t2wlib" or node.module.startswith("t2wlib.")):
        target = node.module.removeprefix("t2wlib").lstrip(".")
    else:
        return []
    found = []
    for alias in node.names:  # `from ..generator import t2w` names a module; `from .x import y` a symbol
        sub = f"{target}.{alias.name}" if target else alias.name
        found.append(sub if sub in MODULES else target)
    return [m for m in found if m in MODULES or m in PACKAGES]


def imports_of(module: str) -> set[str]:
    """Every t2wlib module (or package) `module` imports, wherever the import statement is."""
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, node))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("t2wlib.") for a in node.names if a.name.startswith("t2wlib."))
    return found - {module}


GRAPH = {m: imports_of(m) for m in MODULES}


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for dep in GRAPH.get(todo.pop(), set()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_the_walk_sees_every_kind_of_import():
    assert {"generator.t2w", "encoders.backbones", "heads.adapter"} <= GRAPH["classifier"]  # top level
    assert "encoders.backbones" in GRAPH["pipeline.session"]  # lazy, inside a method
    assert "zoo.model_zoo" in GRAPH["generator.from_zoo"]  # under TYPE_CHECKING only
    assert "core.files" in GRAPH["core.sealed"]  # relative, same package


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_every_import_points_down_or_sideways():
    upward = {f"{m} (layer {layer(m)}) imports {dep} (layer {layer(dep)})"
              for m, deps in GRAPH.items() for dep in deps if layer(dep) > layer(m)}
    assert not upward, sorted(upward)


def test_no_import_cycle():
    cycles = [m for m in GRAPH if m in closure(m)]
    assert not cycles, {m: sorted(GRAPH[m]) for m in cycles}


FORBIDDEN_ON_THE_SHIPPED_PATH = ("zoo", "heads.training", "generator.trainer", "generator.from_zoo", "experiments",
                                 "pipeline", "methods", "data.features", "data.datasets")


@pytest.mark.parametrize("shipped", ["classifier", "generator.t2w"])
def test_the_shipped_path_imports_no_zoo_training_or_experiment_code(shipped):
    bad = {m for m in closure(shipped) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_ON_THE_SHIPPED_PATH)}
    assert not bad, sorted(bad)


def test_the_demo_page_imports_no_zoo_training_or_pipeline_code():
    """The page (t2wlib/demo/page.py) scores and explains heads (experiments.gradcam) but trains nothing;
    only its launcher (demo.server) reaches the pipeline, to build generators when there are none."""
    allowed = {"experiments.gradcam"}
    bad = {m for m in closure("demo.page") - allowed
           if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_ON_THE_SHIPPED_PATH)}
    assert not bad and "demo.uploads" in closure("demo.page"), sorted(bad)


def test_the_shipped_path_loads_no_scipy_or_sklearn_and_the_page_no_training_code():
    """Checked on the running interpreter: what importing the classifier actually loads; then what the demo
    page's modules add (the page itself runs only under Streamlit)."""
    code = ("import sys, t2wlib.classifier, t2wlib.generator.t2w; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'sklearn'})); "
            "import streamlit, t2wlib.demo.catalogue, t2wlib.demo.uploads, t2wlib.experiments.gradcam, "
            "t2wlib.encoders.text, t2wlib.data.class_names; "
            "print(sorted(m for m in sys.modules if m.startswith(('t2wlib.zoo', 't2wlib.heads.training', "
            "'t2wlib.generator.trainer', 't2wlib.generator.from_zoo', 't2wlib.pipeline', 't2wlib.methods', "
            "'t2wlib.data.features', 't2wlib.data.datasets'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "[]"], out


def test_a_notebook_session_starts_without_torchvision_or_seaborn():
    """Every kernel imports the session (and its FigureWriter): torchvision (its models import torch._dynamo)
    and seaborn (scipy.stats) load only where a notebook uses them, not at every kernel start."""
    code = "import sys, t2wlib.pipeline.session; print(sorted({'torchvision', 'seaborn', 'scipy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split("\n")[0] == "[]", out.stdout + out.stderr[-2000:]


def test_image_folders_take_torchvisions_image_extensions():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from t2wlib.data import image_folders

    assert image_folders.IMG_EXTENSIONS == IMG_EXTENSIONS
