"""Valid rows of the validation split: spectrum finite and not all zero, z_min <= redshift <= z_max.

Reads only spectra and redshifts, in blocks; never images, never the embeddings.
"""

from __future__ import annotations

import numpy as np

from astroclip_eval.io.data import Survey

REASONS = ("zero_spectrum", "nonfinite_spectrum", "redshift_out_of_range")


def spectrum_masks(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(zero, non-finite) per row: zero when every bin is 0 or NaN. Row max and min decide it in two vectorised
    passes (NaN and inf propagate into them); only the rare non-finite rows take the exact, slower path."""
    hi, lo = spectra.max(axis=1, initial=-np.inf), spectra.min(axis=1, initial=np.inf)
    finite = np.isfinite(hi) & np.isfinite(lo)
    zero = finite & (hi == 0) & (lo == 0)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        zero[bad] = ~(np.nan_to_num(spectra[bad]) != 0).any(axis=1)
    return zero, ~finite


def reason_masks(spectra: np.ndarray, z: np.ndarray, z_min: float, z_max: float) -> dict[str, np.ndarray]:
    """One boolean mask per reason a row is invalid (a row may fail several)."""
    zero, nonfinite = spectrum_masks(spectra)
    return {
        "zero_spectrum": zero,
        "nonfinite_spectrum": nonfinite,
        "redshift_out_of_range": ~((z >= z_min) & (z <= z_max)),  # NaN redshifts count as out of range
    }


def valid_mask(spectra: np.ndarray, z: np.ndarray, z_min: float, z_max: float) -> np.ndarray:
    return ~np.logical_or.reduce(list(reason_masks(spectra, z, z_min, z_max).values()))


def valid_rows(
    survey: Survey, z_min: float, z_max: float, split: str = "valid", chunk_rows: int = 4096
) -> tuple[np.ndarray, dict]:
    """Sorted int64 indices of valid rows and a summary with counts per reason (a row may have several)."""
    keep_parts = []
    counts = dict.fromkeys(REASONS, 0)
    for seg in survey.segments(split):  # blocks within one group: slices of its datasets, never concatenated
        for _, block in survey.iter_chunks(split, ("spectra", "redshifts"), chunk_rows, seg.offset, seg.offset + seg.size):
            masks = reason_masks(block["spectra"], block["redshifts"], z_min, z_max)
            for reason, mask in masks.items():
                counts[reason] += int(mask.sum())
            keep_parts.append(~np.logical_or.reduce(list(masks.values())))
    keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, dtype=bool)
    indices = np.flatnonzero(keep).astype(np.int64)
    summary = {
        "n_rows": int(keep.size),
        "n_valid": int(indices.size),
        "n_invalid": int(keep.size - indices.size),
        "invalid_by_reason": counts,
        "z_min": z_min,
        "z_max": z_max,
    }
    return indices, summary
