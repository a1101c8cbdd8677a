"""The thing T2W generates (paper §3.1): the CLIP-adapter head (adapter) and the batched trainer that
fits many heads at once (training)."""
