"""Hard-parameter-sharing networks: a trunk (a registered backbone) and one head per task.

The heads of all tasks are one ``nn.Linear`` whose outputs are split per task (binary and
regression: 1 output, multiclass: C outputs, a target of shape S: prod(S) outputs); this is
the same function as separate heads and lets every head run in one matmul. Tasks with a head
of their own (``analyze(heads=...)``) run it beside that matmul (``Heads``). ``TaskLosses``
computes the masked per-task losses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, vmap

from affinity.backbones import get as get_backbone
from affinity.data import Dataset
from affinity.task_types import TaskInfo, TaskLosses
from affinity.taskset import InvalidTaskSet, ModelSpec


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when available; otherwise any torch device string (``cuda:1``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def build_trunk(spec: ModelSpec, input_shape: tuple[int, ...]) -> nn.Module:
    """The shared layers of the task set's backbone (``backbones.py``)."""
    backbone = get_backbone(spec.backbone)
    return backbone.build(input_shape, spec.factory_options())


def trunk_width(trunk: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Width of the trunk's flat features, from one forward pass on two zero inputs (in eval
    mode: running statistics stay as they are)."""
    was = trunk.training
    trunk.eval()
    with torch.no_grad():
        out = trunk(torch.zeros(2, *input_shape))
    trunk.train(was)
    if out.dim() != 2:
        raise ValueError(f"a backbone must return features of shape (N, width); got "
                         f"{tuple(out.shape)}")
    return int(out.shape[1])


def check_backbone(spec: ModelSpec, input_shape: tuple[int, ...]) -> int:
    """Build the trunk once on the data's input shape and return its width; InvalidTaskSet
    naming ``model.backbone`` when it cannot be built or does not return (N, width)
    features."""
    try:
        return trunk_width(build_trunk(spec, input_shape), input_shape)
    except Exception as exc:  # noqa: BLE001  # any failure of the user's module is the task set's
        raise InvalidTaskSet(f"model.backbone: {spec.backbone!r} does not run on inputs of "
                             f"shape {tuple(input_shape)}: {exc}") from None


HeadFactory = Callable[[int], nn.Module]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def own_heads(spec: ModelSpec, data: Dataset, heads: Mapping[str, HeadFactory],
              losses: Mapping[str, LossFn], width: int) -> Dataset:
    """``data`` with the user's heads and losses on its tasks, each tried once: a head on
    features of the trunk's ``width`` (``check_backbone``'s), its loss on two training rows
    labelled for the task. InvalidTaskSet naming ``heads[...]``/``losses[...]`` when one
    does not run."""
    names = [t.name for t in data.tasks]
    for field, given in (("heads", heads), ("losses", losses)):
        for name, fn in given.items():
            if name not in names:
                raise InvalidTaskSet(f"{field}[{name!r}]: not a task ({', '.join(names)})")
            if not callable(fn):
                raise InvalidTaskSet(f"{field}[{name!r}]: must be callable; got "
                                     f"{type(fn).__name__}")
    tasks = []
    for t in data.tasks:
        if t.name in heads:
            try:
                with torch.no_grad():
                    out = heads[t.name](width).eval()(torch.zeros(2, width))
            except Exception as exc:  # noqa: BLE001  # the user's module: any failure is theirs
                raise InvalidTaskSet(f"heads[{t.name!r}]: does not run on features of shape "
                                     f"(2, {width}): {exc}") from None
            t = replace(t, head=heads[t.name], out_shape=tuple(out.shape[1:]),
                        n_outputs=int(out[0].numel()))
        tasks.append(replace(t, loss=losses.get(t.name)))
    data = replace(data, tasks=tuple(tasks))
    _try_losses(spec, data, set(heads) | set(losses))
    return data


def _try_losses(spec: ModelSpec, data: Dataset, names: set[str]) -> None:
    """Each named task's head and loss, once, on two of its training rows."""
    net = MultiTaskNet(spec, data.input_shape, data.tasks).to(data.x_train.device).eval()
    losses = TaskLosses(data.tasks)
    labelled = data.labelled(data.y_train)
    for i, t in enumerate(data.tasks):
        if t.name not in names:
            continue
        rows = labelled[:, i].nonzero().squeeze(1)[:2]
        field = "losses" if t.loss is not None else "heads"
        try:
            with torch.no_grad():
                value = losses(net(data.x_train[rows]), data.y_train[rows])[i]
        except Exception as exc:  # noqa: BLE001
            what = "its loss" if t.loss is not None else f"the {t.type} loss"
            raise InvalidTaskSet(
                f"{field}[{t.name!r}]: {what} does not run on the head's outputs "
                f"{(len(rows), *t.outputs_shape)} and targets {(len(rows), *t.shape)}: "
                f"{exc}") from None
        if not torch.isfinite(value):
            raise InvalidTaskSet(f"{field}[{t.name!r}]: the loss is {value.item()} on two "
                                 "training rows; it must be finite")


class Heads(nn.Module):
    """Every task's head on features (..., width): one ``nn.Linear`` (``linear``) for the
    tasks without a head of their own, and each own head (``own``, a ``ModuleDict`` by task
    position); their outputs flattened per row and concatenated in task order."""

    def __init__(self, width: int, tasks: tuple[TaskInfo, ...]) -> None:
        super().__init__()
        self.width = width
        self.sizes = [t.n_outputs for t in tasks]
        n_linear = sum(t.n_outputs for t in tasks if t.head is None)
        self.linear = nn.Linear(width, n_linear) if n_linear else None
        self.own = nn.ModuleDict({str(i): t.head(width) for i, t in enumerate(tasks)
                                  if t.head is not None})

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        lead, flat = h.shape[:-1], h.reshape(-1, self.width)
        linear = self.linear(flat) if self.linear is not None else flat[:, :0]
        parts, offset = [], 0
        for i, size in enumerate(self.sizes):
            if str(i) in self.own:
                parts.append(self.own[str(i)](flat).reshape(len(flat), size))
            else:
                parts.append(linear[:, offset:offset + size])
                offset += size
        return torch.cat(parts, dim=-1).reshape(*lead, -1)


class MultiTaskNet(nn.Module):
    """Trunk plus the concatenated task heads; ``forward`` returns all heads' outputs.

    ``head`` is one ``nn.Linear`` when no task has a head of its own, else ``Heads``."""

    def __init__(self, spec: ModelSpec, input_shape: tuple[int, ...],
                 tasks: tuple[TaskInfo, ...]) -> None:
        super().__init__()
        self.trunk = build_trunk(spec, input_shape)
        self.width = trunk_width(self.trunk, input_shape)
        self.head: nn.Module = (Heads(self.width, tasks) if any(t.head for t in tasks)
                                else nn.Linear(self.width, sum(t.n_outputs for t in tasks)))

    @property
    def linear_head(self) -> nn.Linear | None:
        """The linear part of the heads (all of them when no task has its own)."""
        if isinstance(self.head, Heads):
            return self.head.linear
        assert isinstance(self.head, nn.Linear)
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def stacked_call(module: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 per_member: bool = False, training: bool = False) -> torch.Tensor:
    """Run ``module`` once per stacked parameter set, all on the same input ``x`` (or, with
    ``per_member``, each on its own: ``x`` of shape (K, n_rows, ...)).

    params : tensors of shape (K, *shape), named as in ``module``; buffers may be among them
        (BatchNorm's running statistics, one set per member)
    training : run the module in train mode (the stacked buffers are updated in place);
        else in eval mode
    Returns shape (K, n_rows, ...). Stacks of Linear/ReLU/Flatten (the MLP) run as batched
    matmuls; anything else through ``vmap(functional_call)``, or member after member
    (``functional_call`` on each member's slices, whose buffers it updates in place) for a
    module that vmap cannot run (data-dependent control flow, ``.item()``, in-place updates of
    a tensor it did not get) and for convolutions on the CPU (``grouped_on_cpu``). All three
    give the same numbers; the matmuls skip vmap's per-call overhead, which dominates small
    models.
    """
    if not _plain(module):
        was = module.training
        module.train(training)
        try:
            if not grouped_on_cpu(module, x) and vmappable(module, params, x, per_member):
                return vmap(functional_call, in_dims=(None, 0, 0 if per_member else None))(
                    module, params, (x,))
            k = next(iter(params.values())).shape[0]
            return torch.stack([functional_call(module, {n: v[m] for n, v in params.items()},
                                                (x[m] if per_member else x,))
                                for m in range(k)])
        finally:
            module.train(was)
    k = next(iter(params.values())).shape[0]
    h = x.flatten(2) if per_member else x.flatten(1).expand(k, -1, -1)
    leaves = [(name, m) for name, m in module.named_modules() if not list(m.children())]
    for name, layer in leaves:
        if isinstance(layer, nn.Linear):
            weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
        else:
            h = h.flatten(2)
    return h


def grouped_on_cpu(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` convolves on the CPU, where vmap (and a batched backward) turns the
    members' convolutions into one grouped convolution that trains 2 to 3 times slower than
    the members one after another (``bench/targets/probes.py``, case h)."""
    return x.device.type == "cpu" and any(isinstance(m, nn.modules.conv._ConvNd)
                                          for m in module.modules())


def _plain(module: nn.Module) -> bool:
    """Whether ``module`` is Linear/ReLU/Flatten layers applied one after another (its
    forward is its leaves in order), which ``stacked_call`` runs as batched matmuls."""
    if isinstance(module, nn.Linear | nn.ReLU | nn.Flatten):
        return True
    if isinstance(module, MultiTaskNet):
        return _plain(module.trunk) and _plain(module.head)
    return type(module) is nn.Sequential and all(_plain(m) for m in module.children())


def vmappable(module: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
              per_member: bool) -> bool:
    """Whether ``vmap`` runs ``module`` (tried once per module on two rows and copies of the
    parameters, in the module's current mode; the answer is kept on the module)."""
    known = module.__dict__.get("_vmappable")
    if known is None:
        trial = {k: v.detach()[:1].clone() for k, v in params.items()}
        rows = x[:1, :2] if per_member else x[:2]
        try:
            with torch.no_grad():
                vmap(functional_call, in_dims=(None, 0, 0 if per_member else None))(
                    module, trial, (rows,))
            known = True
        except Exception:  # noqa: BLE001  # whatever vmap refuses, the loop runs
            known = False
        module.__dict__["_vmappable"] = known
    return bool(known)
