"""Shared plumbing: data access, atomic writes, safe checkpoint reading, errors, config and planning names."""
