"""Chapter 05's checks hard-wire no size of the default model: the checks that read the language
model (its residual stream, its unembedding) pass the references and catch every wrong version on
a differently shaped second model too."""
import pytest

import solutions.ch05_sparse_autoencoders as S
from autograder.core import run_checks
from tests.conftest import REGISTRY
from tests.wrong.ch05_sparse_autoencoders import WRONG

ON_THE_MODEL = ["encode_relu", "feature_logit_effects", "clamp_feature"]
"""The exercises whose checks take inputs from the check model."""


@pytest.mark.parametrize("exercise", ON_THE_MODEL)
def test_checks_on_a_second_model(second_model, exercise):
    assert second_model.cfg.d_model == 48
    entry = REGISTRY[exercise]
    result = run_checks(getattr(S, exercise), entry, include_hidden=True)
    assert result.passed, "\n".join(f"{r.name}: {r.message}" for r in result.results if not r.passed)
    for wrong in WRONG[exercise]:
        assert not run_checks(wrong, entry, include_hidden=True).passed, f"{wrong.__name__} passes on the second model"
