"""Helpers for chapter 03 that are not exercises: clean/corrupted datasets, plots."""
import torch
from torch import Tensor

# ============================================================ part 1: datasets and patching plots (H4)

# ============================================================ part 2: discovery helpers and plots (H5)
