"""The centre crop, in one place: the reader's HDF5 hyperslab and every model take the same window.

The origin is torchvision's `CenterCrop` rounding, int(round((h - c) / 2)), which the reproduction's training used:
with an odd margin (a 99-pixel image cropped to 96) it starts one pixel further than (h - c) // 2 would, so a crop
computed any other way would see a window one pixel apart."""

from __future__ import annotations

from typing import TypeVar

from astroclip_eval.io.errors import UserError

Images = TypeVar("Images")  # a numpy array or a torch tensor, (n, H, W, bands)


def crop_origin(height: int, width: int, crop: int, owner: str = "the") -> tuple[int, int]:
    """(y0, x0) of the centre crop x crop window; images smaller than the crop are refused, naming `owner`."""
    if crop > height or crop > width:
        raise UserError(f"images are {height}x{width}, smaller than {owner} centre crop of {crop}")
    return int(round((height - crop) / 2)), int(round((width - crop) / 2))


def centre_crop(images: Images, crop: int, owner: str = "the") -> Images:
    """The centre crop x crop pixels of (n, H, W, bands) images (a no-op on images already that size)."""
    y0, x0 = crop_origin(images.shape[1], images.shape[2], crop, owner)
    return images[:, y0 : y0 + crop, x0 : x0 + crop, :]
