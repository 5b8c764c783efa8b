"""Checks for chapter 03: activation patching and circuit discovery.

Public checks draw their inputs from fixed seeds; hidden checks draw fresh ones from torch's
global generator, which the grader seeds for each submission and check
(:func:`autograder.core.seeded_for`).
"""
import torch

from autograder.core import check_model, checks, expect, expect_close, expect_tensor

# ============================================================ part 1: metrics and patching (H4)

# ============================================================ part 2: attribution, discovery, faithfulness (H5)
