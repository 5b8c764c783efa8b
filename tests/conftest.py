"""Shared fixtures: the exercise registry, learner stubs and wrong implementations."""
import importlib

import pytest

from autograder.core import load_all_chapters
from course.notebooks import chapter_notebooks, module_name, stubs

REGISTRY = load_all_chapters()
CHAPTER_NOTEBOOKS = {module_name(nb): nb for nb in chapter_notebooks()}


def wrong_implementations(chapter: str) -> dict:
    try:
        return importlib.import_module(f"tests.wrong.{chapter}").WRONG
    except ModuleNotFoundError:
        return {}


@pytest.fixture(scope="session")
def learner_stubs():
    """Every stub from every learner notebook, by exercise name."""
    found = {}
    for notebook in CHAPTER_NOTEBOOKS.values():
        found.update(stubs(notebook))
    return found
