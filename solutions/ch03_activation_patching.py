"""Reference solutions for chapter 03: activation patching and circuit discovery."""
import torch
from torch import Tensor

# ============================================================ part 1: metrics and patching (H4)

# ============================================================ part 2: attribution, discovery, faithfulness (H5)
