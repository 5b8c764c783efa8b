"""Chapter 05's checks hard-wire no size of the default model: the checks that read the language
model (its residual stream, its unembedding) pass the references and catch every wrong version on
a differently shaped second model too."""
import pytest

import solutions.ch05_sparse_autoencoders as S
from tests.conftest import assert_checks_hold
from tests.wrong.ch05_sparse_autoencoders import WRONG

ON_THE_MODEL = ["encode_relu", "feature_logit_effects", "clamp_feature"]
"""The exercises whose checks take inputs from the check model."""


@pytest.mark.parametrize("exercise", ON_THE_MODEL)
def test_checks_on_a_second_model(second_model, exercise):
    assert second_model.cfg.d_model == 48
    assert_checks_hold(getattr(S, exercise), exercise, WRONG[exercise])
