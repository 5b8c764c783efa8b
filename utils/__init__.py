"""Helpers the chapters share (models, the small world, plots), plus one module per chapter.

Importing ``utils`` sets up plotly so that figures are interactive in Jupyter and in the book.
"""
from utils import plots  # noqa: F401  (configures plotly renderers on import)
