"""Corpus readers, the synthetic corpora and the preprocessing cache."""
