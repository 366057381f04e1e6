"""Evaluate trained AstroCLIP models: checkpoint promotion, embeddings, kNN redshift and similarity search."""

__version__ = "0.1.0"
