"""Realistic wrong versions of chapter 03's exercises."""
import torch

WRONG = {}

# ============================================================ part 1: metrics and patching (H4)

# ============================================================ part 2: attribution, discovery, faithfulness (H5)
