"""The embedded demo: the simulated survey and catalogues, its template fit, and training the reference model."""
