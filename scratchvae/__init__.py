"""scratchvae: variational inference from scratch in NumPy, every gradient written by hand and checked."""
__version__ = "0.1.0"
