"""The audit's math: numpy and the standard library only, no files, no printing."""
