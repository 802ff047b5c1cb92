"""The registry of trunks a task set can name (``model.backbone``).

A backbone is a factory ``(input_shape, **options) -> nn.Module`` whose module maps a batch of
shape (N, *input_shape) to features of shape (N, width). Packages register theirs under the
Python entry-point group ``taskaffinity.backbones`` (the name is the entry point's); the two
built-ins, ``mlp`` and ``cnn``, are registered the same way by this package. Task sets name a
backbone and its keyword options; they never name code to import. From Python, ``register``
adds a trunk to this process's registry (``analyze(..., trunk=factory)`` does it for you).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from torch import nn

GROUP = "taskaffinity.backbones"

Factory = Callable[..., nn.Module]


def mlp(input_shape: tuple[int, ...], hidden: list[int] | None = None) -> nn.Module:
    """Fully connected layers with ReLU on the flattened input; width ``hidden[-1]``."""
    width = 1
    for d in input_shape:
        width *= d
    layers: list[nn.Module] = [nn.Flatten()]
    for h in hidden or [128, 64]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers)


def cnn(input_shape: tuple[int, ...], hidden: list[int] | None = None) -> nn.Module:
    """3x3 convolutions with ReLU and 2x2 max pooling on images (C, H, W), ``hidden``
    channels, then global average pooling; width ``hidden[-1]``."""
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs images of shape (C, H, W); got {input_shape}")
    channels, size = input_shape[0], min(input_shape[1:])
    layers: list[nn.Module] = []
    for h in hidden or [32, 64]:
        layers += [nn.Conv2d(channels, h, kernel_size=3, padding=1), nn.ReLU()]
        if size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = h
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


BUILTINS: dict[str, Factory] = {"mlp": mlp, "cnn": cnn}


@dataclass(frozen=True)
class Backbone:
    name: str
    factory: Factory

    @property
    def options(self) -> dict[str, Any]:
        """Keyword options and their defaults (None where there is none)."""
        params = list(inspect.signature(self.factory).parameters.values())[1:]
        return {p.name: None if p.default is inspect.Parameter.empty else p.default
                for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.factory) or ""

    def check(self, options: dict[str, Any]) -> None:
        """Raise ValueError naming the first option the factory does not take."""
        try:
            inspect.signature(self.factory).bind(None, **options)
        except TypeError as exc:
            known = ", ".join(self.options) or "none"
            raise ValueError(f"backbone {self.name!r} does not take these options "
                             f"({exc}); its options: {known}") from None

    def build(self, input_shape: tuple[int, ...], options: dict[str, Any]) -> nn.Module:
        return self.factory(tuple(input_shape), **options)


@functools.cache
def registry() -> dict[str, Backbone]:
    """Every backbone installed: the built-ins and each ``taskaffinity.backbones`` entry
    point (an entry point that fails to load is left out, not fatal)."""
    found = {name: Backbone(name, f) for name, f in BUILTINS.items()}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        try:
            found[ep.name] = Backbone(ep.name, ep.load())
        except Exception:  # noqa: BLE001  # a broken plug-in must not take the service down
            continue
    return found


def register(name: str, factory: Factory) -> str:
    """Register ``factory`` ``(input_shape, **options) -> nn.Module`` under ``name`` in this
    process (a notebook's or a script's own trunk, with no package to install); registering a
    name again replaces it. Installed backbones keep their names. Returns the name."""
    installed = {ep.name for ep in entry_points(group=GROUP)} | set(BUILTINS)
    if name in installed:
        raise ValueError(f"backbone {name!r} is installed; register yours under another name")
    if not callable(factory):
        raise ValueError(f"backbone {name!r}: the factory must be callable; got "
                         f"{type(factory).__name__}")
    registry()[name] = Backbone(name, factory)
    return name


def get(name: str) -> Backbone:
    backbones = registry()
    if name not in backbones:
        raise ValueError(f"unknown backbone {name!r}; installed: {', '.join(sorted(backbones))}")
    return backbones[name]
