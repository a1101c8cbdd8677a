"""t2wlib: the Text2Weight (T2W) compendium library, in layers (docs/ARCHITECTURE.md §1).

core -> encoders -> data -> heads -> zoo -> generator -> methods, classifier -> pipeline.profiles and
pipeline.config -> experiments -> pipeline. The method reads in five files: heads/adapter.py (the head),
generator/tokenizer.py, generator/dit.py, generator/diffusion.py, generator/t2w.py (the generator).
"""

__version__ = "0.1.0"
