"""The preprocessing a trained network expects, as data, and the one image reader that applies it.

The image-folder loader and ``nasforge predict`` read files through the same ``read_image`` and normalise them
through the same ``Preprocessing.apply``, so a file classified after training is prepared exactly as the
training images were: decoded with Pillow, converted to grey (``L``) or ``RGB``, resized as a whole to the data
size (Pillow bilinear, aspect ratio not kept, no crop), scaled to [0, 1] (8-bit / 255), normalised per channel
with the training split's mean and std, grey repeated to the network's channels, and resized to the network's
input (torch bilinear, antialiased when shrinking).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
RESIZE_RULE = ("whole image resized to data_size (Pillow bilinear, aspect ratio not kept, no crop), pixels / 255, "
               "(x - mean) / std per channel, grey repeated to input_channels, then resized to input_size "
               "(torch bilinear, antialiased when shrinking)")


def image_mode(channels: int) -> str:
    """Pillow's mode for images of ``channels`` channels: ``L`` (grey) or ``RGB``."""
    if channels not in (1, 3):
        raise NasforgeError(f"images must have 1 (grey) or 3 (RGB) channels, got {channels}")
    return "L" if channels == 1 else "RGB"


def read_image(path: str | os.PathLike[str], channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as uint8 (C, H, W): converted to grey or RGB and resized as a whole to ``size`` (H, W;
    Pillow bilinear) when it differs. Raises ``OSError`` (Pillow's errors included) when it cannot be read."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        img = im.convert(image_mode(channels))
    if size is not None and (img.height, img.width) != tuple(size):
        img = img.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@dataclass(frozen=True)
class Preprocessing:
    """What a trained network expects of its input and how an image file is brought to it (``RESIZE_RULE``).

    ``data_size`` (H, W) and ``channels`` are the data's (what images are read as); ``input_size`` and
    ``input_channels`` the network's; ``mean``/``std`` are per data channel, of pixels in [0, 1].
    """

    data_size: tuple[int, int]
    channels: int
    input_size: tuple[int, int]
    input_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    resize: str = RESIZE_RULE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        try:
            return cls(data_size=(int(d["data_size"][0]), int(d["data_size"][1])), channels=int(d["channels"]),
                       input_size=(int(d["input_size"][0]), int(d["input_size"][1])),
                       input_channels=int(d["input_channels"]), mean=tuple(float(v) for v in d["mean"]),
                       std=tuple(float(v) for v in d["std"]), classes=tuple(str(c) for c in d["classes"]),
                       resize=str(d.get("resize", RESIZE_RULE)))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise NasforgeError(f"malformed preprocessing metadata ({type(e).__name__}: {e}); expected the keys "
                                "data_size, channels, input_size, input_channels, mean, std, classes") from None

    def apply(self, images: np.ndarray, scale: float = 255.0) -> Any:
        """uint8 (N, C, H, W) images at ``data_size`` -> the network's float32 input tensor (N, C', H', W')."""
        import torch

        from nasforge.data._dataset import Split, _resize_split

        x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(scale)
        mean = torch.tensor(self.mean, dtype=torch.float32)
        std = torch.tensor(self.std, dtype=torch.float32)
        x = x.sub_(mean[None, :, None, None]).div_(std[None, :, None, None]).contiguous()
        if self.input_channels != x.shape[1]:
            x = x.expand(-1, self.input_channels, -1, -1).contiguous()
        if tuple(x.shape[2:]) != self.input_size:
            x = _resize_split(Split(x, torch.zeros(len(x), dtype=torch.int64)), self.input_size).x
        return x

    def read(self, paths: Sequence[str | os.PathLike[str]]) -> Any:
        """Image files -> the network's input tensor; an unreadable file is one line naming it."""
        arrs = []
        for p in paths:
            if not Path(p).is_file():
                raise NasforgeError(f"image {p} does not exist")
            try:
                arrs.append(read_image(p, self.channels, self.data_size))
            except (OSError, ValueError) as e:
                raise NasforgeError(f"cannot read image {p}: {e}") from None
        if not arrs:
            raise NasforgeError("no image given")
        return self.apply(np.stack(arrs))
