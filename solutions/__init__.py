"""Reference implementations of every exercise, a module per chapter. Not shipped to learners."""
