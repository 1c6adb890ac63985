"""Readers: masks and predicted probabilities on disk, paired into a dataset."""
