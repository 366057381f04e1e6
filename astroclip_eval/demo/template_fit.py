"""Redshift success of a spectrum: a chi^2 template fit over a redshift grid and its delta-chi^2.

The published file's redshifts are DESI catalogue redshifts, which Redrock measured from the same spectra and which
the catalogue calls secure when the best fit beats the best solution more than 0.01 away in redshift by a
delta-chi^2 margin. The demo survey applies the same kind of selection with this fit, so its labels behave like
catalogue redshifts: recoverable from the spectrum.

At every grid redshift each spectrum is fitted by an unconstrained linear combination of the templates with its own
inverse variance; chi^2(z) = y'Wy - b'A^-1 b with b = TWy and A = TWT'. The pixels are averaged in blocks (the
per-block inverse variance adds up), which keeps features of a few Angstrom and makes the fit a few matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SECURE_DZ = 0.01  # a competing solution is the best one at least this far away in redshift (Redrock's window)


@dataclass(frozen=True)
class FitResult:
    """Per spectrum: the best-fit redshift, its chi^2, and delta-chi^2 to the best solution more than SECURE_DZ away."""

    z_best: np.ndarray
    chi2_best: np.ndarray
    delta_chi2: np.ndarray


def _block_mean(x: np.ndarray, block: int) -> np.ndarray:
    n = (x.shape[-1] // block) * block
    return x[..., :n].reshape(*x.shape[:-1], n // block, block).mean(axis=-1)


def template_grid(
    wave: np.ndarray, rest_wave: np.ndarray, templates: np.ndarray, zgrid: np.ndarray, block: int
) -> np.ndarray:
    """(n_z, n_templates, n_blocks): the templates redshifted onto the observed grid and block-averaged like the
    data, replaced at each redshift by an orthonormal basis of the same span (the fit is linear, so only the span
    matters, and orthonormal rows keep the per-spectrum systems well conditioned in float32)."""
    out = np.stack([_block_mean(np.stack([np.interp(wave / (1 + z), rest_wave, t) for t in templates]), block)
                    for z in zgrid])
    q, _ = np.linalg.qr(out.transpose(0, 2, 1))
    return np.ascontiguousarray(q.transpose(0, 2, 1))


def _quadratic_forms(a: dict[tuple[int, int], np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """b' A^-1 b for a batch of small symmetric positive (semi)definite systems, by a Cholesky vectorised over the
    batch. a[(i, j)] (i >= j) and b[i] are arrays of the batch's shape, one per entry, so every operation runs on a
    contiguous array. Pivots are floored, so a degenerate template set loses a direction rather than giving inf."""
    k = len(b)
    floor = 1e-10 * np.max([a[(i, i)] for i in range(k)], axis=0)
    low: dict[tuple[int, int], np.ndarray] = {}
    for j in range(k):
        low[(j, j)] = np.sqrt(np.maximum(a[(j, j)] - sum((low[(j, m)] ** 2 for m in range(j)), 0.0), floor))
        for i in range(j + 1, k):
            low[(i, j)] = (a[(i, j)] - sum((low[(i, m)] * low[(j, m)] for m in range(j)), 0.0)) / low[(j, j)]
    total = np.zeros_like(b[0])
    y: list[np.ndarray] = []
    for i in range(k):
        y.append((b[i] - sum((low[(i, m)] * y[m] for m in range(i)), 0.0)) / low[(i, i)])
        total += y[i] ** 2
    return total


def fit_redshifts(
    spectra: np.ndarray,
    sigma: np.ndarray,
    wave: np.ndarray,
    rest_wave: np.ndarray,
    templates: np.ndarray,
    zgrid: np.ndarray,
    block: int = 8,
    chunk: int = 256,
) -> FitResult:
    """Fit every spectrum (n, n_pix) with per-pixel noise sigma (n, n_pix) at every redshift of `zgrid`."""
    tz = template_grid(wave, rest_wave, templates, zgrid, block)  # (Z, T, P)
    n_z, n_t, n_p = tz.shape
    entries = [(i, j) for i in range(n_t) for j in range(i + 1)]  # A's distinct entries
    pairs = np.concatenate([tz[:, i, :] * tz[:, j, :] for i, j in entries]).T.astype(np.float32)  # (P, E * Z)
    flat = np.concatenate([tz[:, t, :] for t in range(n_t)]).T.astype(np.float32)  # (P, T * Z)
    n = spectra.shape[0]
    z_best, chi2_best, delta = np.empty(n), np.empty(n), np.empty(n)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        y = _block_mean(spectra[lo:hi].astype(np.float64), block)
        ivar = 1.0 / (_block_mean(sigma[lo:hi].astype(np.float64) ** 2, block) / block)
        wy = ivar * y
        # The products in float32 (twice as fast; orthonormal templates keep them accurate), the solve in float64.
        b = (wy.astype(np.float32) @ flat).astype(np.float64).reshape(hi - lo, n_t, n_z)
        a = (ivar.astype(np.float32) @ pairs).astype(np.float64).reshape(hi - lo, len(entries), n_z)
        quad = _quadratic_forms({e: a[:, m] for m, e in enumerate(entries)}, [b[:, t] for t in range(n_t)])
        chi2 = (wy * y).sum(axis=1, keepdims=True) - quad  # (m, Z)
        best = chi2.argmin(axis=1)
        rows = np.arange(hi - lo)
        z_best[lo:hi], chi2_best[lo:hi] = zgrid[best], chi2[rows, best]
        far = np.abs(zgrid[None, :] - zgrid[best][:, None]) > SECURE_DZ
        delta[lo:hi] = np.where(far, chi2, np.inf).min(axis=1) - chi2_best[lo:hi]
    return FitResult(z_best, chi2_best, delta)
