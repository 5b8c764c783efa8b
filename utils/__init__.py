"""Helpers the chapters share (models, the small world, plots), plus one module per chapter."""
