"""t2wlib: the Text2Weight (T2W) compendium library.

Pipeline (docs/ARCHITECTURE.md §1): base dataset -> frozen backbone features (features.py) and class-text
embeddings (text_encoders.py, task_condition.py) -> CLIP-adapter heads (head.py) -> model zoo -> weight
tokenizer -> DiT + diffusion -> evaluation and applications. Profiles (profiles.py) set every size.
"""

__version__ = "0.1.0"
