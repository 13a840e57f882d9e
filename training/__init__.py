"""MPS models, training and evaluation. Only `training.mps` and the GPU tasks import torch."""
