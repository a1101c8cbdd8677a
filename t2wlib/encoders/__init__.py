"""The frozen encoders: image backbones (ResNet-18, EfficientNet-Lite0) and text encoders (CLIP,
MiniLM), each a registry keyed by name."""
