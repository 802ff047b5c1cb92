"""Hard-parameter-sharing networks: a trunk (a registered backbone) and one head per task.

The heads of all tasks are one ``nn.Linear`` whose outputs are split per task (binary and
regression: 1 output, multiclass: C outputs); this is the same function as separate heads
and lets every head run in one matmul. ``TaskLosses`` computes the masked per-task losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from affinity.backbones import get as get_backbone
from affinity.data import TaskInfo
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


def check_backbone(spec: ModelSpec, input_shape: tuple[int, ...]) -> None:
    """Build the trunk once on the data's input shape; InvalidTaskSet naming
    ``model.backbone`` when it cannot be built or does not return (N, width) features."""
    try:
        trunk_width(build_trunk(spec, input_shape), input_shape)
    except Exception as exc:  # noqa: BLE001  # any failure of the user's module is the task set's
        raise InvalidTaskSet(f"model.backbone: {spec.backbone!r} does not run on inputs of "
                             f"shape {tuple(input_shape)}: {exc}") from None


class MultiTaskNet(nn.Module):
    """Trunk plus the concatenated task heads; ``forward`` returns all heads' outputs."""

    def __init__(self, spec: ModelSpec, input_shape: tuple[int, ...],
                 tasks: tuple[TaskInfo, ...]) -> None:
        super().__init__()
        self.trunk = build_trunk(spec, input_shape)
        self.head = nn.Linear(trunk_width(self.trunk, input_shape),
                              sum(t.n_outputs for t in tasks))

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
    matmuls; anything else through ``vmap(functional_call)``. Both give the same numbers; the
    matmuls skip vmap's per-call overhead, which dominates small models.
    """
    leaves = [(name, m) for name, m in module.named_modules() if not list(m.children())]
    if not all(isinstance(m, nn.Linear | nn.ReLU | nn.Flatten) for _, m in leaves):
        was = module.training
        module.train(training)
        try:
            return vmap(functional_call, in_dims=(None, 0, 0 if per_member else None))(
                module, params, (x,))
        finally:
            module.train(was)
    k = next(iter(params.values())).shape[0]
    h = x.flatten(2) if per_member else x.flatten(1).expand(k, -1, -1)
    for name, layer in leaves:
        if isinstance(layer, nn.Linear):
            weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        elif isinstance(layer, nn.ReLU):
            h = torch.relu(h)
        else:
            h = h.flatten(2)
    return h


class TaskLosses:
    """Masked per-task losses of head outputs: BCE (binary), CE (multiclass), MSE (regression).

    ``sums(out, y)`` takes ``out`` of shape (..., n_rows, n_outputs) and ``y`` of shape
    (n_rows, n_tasks), or one per network (..., n_rows, n_tasks), with NaN for missing
    labels; it returns the per-task loss sums of shape (..., n_tasks) and the label counts
    of shape (n_tasks,) or (..., n_tasks). ``__call__`` returns the means
    (0 for a task with no label in ``y``).
    """

    def __init__(self, tasks: tuple[TaskInfo, ...]) -> None:
        starts, offset = [], 0
        for t in tasks:
            starts.append(offset)
            offset += t.n_outputs
        by_type = {k: [i for i, t in enumerate(tasks) if t.type == k] for k in
                   ("binary", "regression")}
        self.binary: slice | list[int] = by_type["binary"]
        self.regression: slice | list[int] = by_type["regression"]
        self.multiclass = [(i, starts[i], t.n_outputs) for i, t in enumerate(tasks)
                           if t.type == "multiclass"]
        self.bin_cols = _as_slice([starts[i] for i in by_type["binary"]])
        self.reg_cols = _as_slice([starts[i] for i in by_type["regression"]])
        order = by_type["binary"] + by_type["regression"] + [i for i, _, _ in self.multiclass]
        inverse = [order.index(i) for i in range(len(tasks))]
        self.inverse = None if inverse == sorted(inverse) else inverse
        self.binary = _as_slice(by_type["binary"])
        self.regression = _as_slice(by_type["regression"])

    def sums(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = ~torch.isnan(y)
        target = torch.nan_to_num(y)
        parts = []
        if self.binary != slice(0, 0):
            m, t = mask[..., self.binary], target[..., self.binary]
            loss = F.binary_cross_entropy_with_logits(
                out[..., self.bin_cols], t.expand(out.shape[:-1] + t.shape[-1:]),
                reduction="none")
            parts.append((loss * m).sum(-2))
        if self.regression != slice(0, 0):
            m, t = mask[..., self.regression], target[..., self.regression]
            parts.append((((out[..., self.reg_cols] - t) ** 2) * m).sum(-2))
        for i, start, n in self.multiclass:
            logp = torch.log_softmax(out[..., start:start + n], dim=-1)
            idx = target[..., i, None].long().expand(out.shape[:-1] + (1,))
            nll = -logp.gather(-1, idx).squeeze(-1)
            parts.append((nll * mask[..., i]).sum(-1, keepdim=True))
        sums = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        return (sums if self.inverse is None else sums[..., self.inverse]), mask.sum(-2)

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sums, counts = self.sums(out, y)
        return sums / counts.clamp(min=1)


def _as_slice(index: list[int]) -> slice | list[int]:
    """A contiguous index list as a slice (cheaper to index and to differentiate through)."""
    if not index:
        return slice(0, 0)
    if index == list(range(index[0], index[-1] + 1)):
        return slice(index[0], index[-1] + 1)
    return index
