"""The simulated universe's fixed ingredients, shared by the survey and its catalogues: the cosmology and kcorrect's
templates (read once). Below both, so neither imports the other."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

TEMPLATE_FILE = "kcorrect-default-v4.fits"


@lru_cache(maxsize=1)
def cosmology() -> Any:
    """Flat Lambda-CDM, H0 = 70, Omega_m = 0.3 (astropy)."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=70.0, Om0=0.3)


@lru_cache(maxsize=1)
def kcorrect_templates() -> Any:
    """kcorrect's five `kcorrect-default-v4` templates, with their wavelengths, fluxes and per-template masses and
    metallicities."""
    import kcorrect
    import kcorrect.template

    return kcorrect.template.Template(filename=os.path.join(kcorrect.KCORRECT_DIR, "data", "templates", TEMPLATE_FILE))
