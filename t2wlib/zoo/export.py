"""Export a zoo's text-weight pairs in a format other projects load without t2wlib.

The paper releases its 36,000 text-weight pairs as a contribution but ships no loader; this writes
    pairs.safetensors   theta (T, P) float32 heads; v_c_<variant> (T, D) task text vectors (Alg. 1);
                        class_emb_<variant> (C, D); task_classes (T, K) int64, -1 padded;
                        split (T,) int64 (0 seen, 1 unseen, 2 heldout)
    tasks.jsonl         one JSON object per task: id, split, class ids and names, texts, accuracies
    README.md           this format, with the head's shapes and flat layout filled in
Loading needs only `safetensors` (numpy or torch) and `json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.files import atomic_write_text
from ..core.sealed import load_checked, save_checked
from ..data.subtasks import SPLITS
from .model_zoo import Zoo

README = """# Text-weight pairs: {dataset}

{T} classification tasks over the {C} classes of `{dataset}`, each with the weights of a trained
CLIP-adapter head and the text that describes the task. Built by t2w from {source}.

## Files
- `pairs.safetensors` (load with `safetensors.numpy.load_file` or `safetensors.torch.load_file`):
{tensors}
- `tasks.jsonl`: one JSON object per task (same order as the rows above): `id`, `split`,
  `classes` (ids), `class_names`, one list of class texts per variant (`prompts`: "A photo of
  {{class}}", T2W-CLIP; `descriptions`: T2W-NL),
  `test_accuracy` of the trained head, `universal_accuracy` of the all-class Universal Model.

## The head (what `theta` holds)
Features f (F = {F}, from backbone `{backbone}`) -> Linear(F, r = {r}) -> GELU -> Linear(r, D = {D})
-> L2-normalise -> h; the logit of class c is 100 * h . class_emb[c] (unit text embeddings from
`{encoder}`). Each row of `theta` has P = {P} values laid out as
`[W1 (r x F) row-major | b1 (r) | W2 (D x r) row-major | b2 (D)]`, weights in nn.Linear's
(out, in) convention.

## Task text vector (paper App. B.2, Alg. 1)
For a task with class embeddings e_1..e_k: mu = mean(e_i); w_i = softmax_i(cos(e_i, mu));
v_c = sum_i w_i e_i.

## Example
```python
import json
from safetensors.numpy import load_file
pairs = load_file("pairs.safetensors")
tasks = [json.loads(line) for line in open("tasks.jsonl")]
theta, v_c = pairs["theta"], pairs["v_c_prompt"]   # (T, P), (T, D)
```
"""


def export_pairs(zoo: Zoo, out_dir: str | Path) -> Path:
    """Write the zoo's text-weight pairs to `out_dir` (see module docstring); returns the folder. A
    finished export of the same zoo (README.md is written last; the pairs verify and hold its heads) is
    left as it is, so that re-running 01_zoo on a read-only artifacts folder writes nothing."""
    out = Path(out_dir)
    if (out / "README.md").exists() and (out / "tasks.jsonl").exists() and (out / "pairs.safetensors").exists():
        tensors, _ = load_checked(out / "pairs.safetensors")
        if torch.equal(tensors["theta"], zoo.theta.float()):
            return out
    out.mkdir(parents=True, exist_ok=True)
    tensors = {"theta": zoo.theta.float(), "task_classes": zoo.tasks.padded(),
               "split": torch.tensor([SPLITS.index(s) for s in zoo.tasks.split])}
    for name, value in zoo.task_text.items():
        tensors[name.replace("/", "_")] = value.float()
    save_checked(out / "pairs.safetensors", tensors, {"artifact": "t2w text-weight pairs"})
    texts = zoo.source.get("class_texts", {})  # variant -> one text per class, as the zoo was built
    lines = []
    for row in zoo.table().itertuples():
        record = {"id": row.id, "split": row.split, "classes": row.classes, "class_names": list(row.class_names)}
        record.update({f"{variant}s": [t[c] for c in row.classes] for variant, t in texts.items()})
        record.update(test_accuracy=row.test_accuracy, universal_accuracy=row.universal_accuracy)
        lines.append(json.dumps(record))
    atomic_write_text(out / "tasks.jsonl", "\n".join(lines) + "\n")
    described = "\n".join(f"  - `{k}`: {tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}" for k, v in tensors.items())
    s = zoo.spec
    atomic_write_text(out / "README.md", README.format(
        dataset=zoo.source.get("dataset", "?"), T=len(zoo.tasks), C=len(zoo.class_names), tensors=described,
        source=", ".join(f"{k}={v}" for k, v in zoo.source.items() if k != "class_texts"),
        F=s.feature_dim, r=s.hidden, D=s.embed_dim, P=s.num_params, backbone=zoo.source.get("backbone", "?"),
        encoder=zoo.source.get("text_encoder", "?")))
    return out
