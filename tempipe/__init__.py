"""tempipe: unbiased nanocrystal morphology from transmission electron micrographs."""

__version__ = "0.1.0"
