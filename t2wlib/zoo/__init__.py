"""The model zoo (paper §4.1, App. B.3): stage 1 (θ0*), per-task heads fine-tuned from it, the
Universal Model, with their text vectors, written as verified shards (model_zoo), and its export as
(text, weights) pairs (export)."""
