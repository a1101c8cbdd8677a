"""Foundation: atomic and verified files (files, sealed), the feature cache (tensor_cache), folder
locks, name registries, devices and threads (runtime), and the torchrun helpers (distributed).
Imports nothing else of t2wlib."""
