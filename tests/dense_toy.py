"""Tiny dense models that follow the dense contract, and a one-decision space that builds them (tests only)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.spaces import Architecture, Decision, SearchSpace


class TinySeg(nn.Module):
    def __init__(self, c_in: int, k: int, width: int) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU())
        self.b = nn.Conv2d(width, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.b(self.a(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


class TinyDet(nn.Module):
    strides = (8, 16)

    def __init__(self, c_in: int, k: int, width: int) -> None:
        super().__init__()
        self.p3 = nn.Sequential(nn.Conv2d(c_in, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1),
                                nn.ReLU(),
                                nn.Conv2d(width, width, 3, 2, 1), nn.ReLU())
        self.p4 = nn.Sequential(nn.Conv2d(width, width, 3, 2, 1), nn.ReLU())
        self.head = nn.Conv2d(width, k + 5, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = self.p3(x)
        return self.head(a), self.head(self.p4(a))


class TinyDenseSpace(SearchSpace):
    name = "tinydense"
    tasks = ("segmentation", "detection")

    def __init__(self, task: str = "segmentation", in_channels: int = 1, resolution: int = 32,
                 num_classes: int = 3) -> None:
        self.task, self.in_channels, self.resolution, self.num_classes = task, in_channels, resolution, num_classes

    def decisions(self) -> list[Decision]:
        return [Decision("width", (4, 8))]

    def format(self, choices: tuple[int, ...]) -> str:
        return f"w{(4, 8)[choices[0]]}"

    def parse(self, text: str) -> Architecture:
        return self.decode([{"w4": 0, "w8": 1}[text]])

    def _fit(self, input_shape, num_classes, keep, task):  # type: ignore[no-untyped-def]
        return TinyDenseSpace(task, input_shape[0], input_shape[1], num_classes)

    def graph(self, arch: Architecture) -> dict[str, list[dict[str, Any]]]:
        return {"nodes": [{"id": "in", "kind": "input", "level": "P3"}, {"id": "c1", "kind": "sum", "level": "P4"}],
                "edges": [{"from": "in", "to": "c1", "kind": "input"}]}

    def input_shape(self, arch: Architecture) -> tuple[int, ...]:
        return (self.in_channels, self.resolution, self.resolution)

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Any:
        from nasforge.cost import profile

        return profile(self.build(arch), self.input_shape(arch), precision=precision)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        k = num_classes or self.num_classes
        w = (4, 8)[arch.choices[0]]
        cls = TinySeg if self.task == "segmentation" else TinyDet
        return cls(self.in_channels, k, w)
