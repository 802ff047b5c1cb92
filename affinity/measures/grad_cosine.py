"""Gradient cosine: cos(g_i, g_j) of per-task gradients on the shared trunk (joint run)."""

from affinity.measures.base import Measure

GRAD_COSINE = Measure(
    name="grad_cosine",
    needs=frozenset({"joint"}),
    compute=lambda run: run.joint_probe.grad_cosine,
    description="cosine of per-task trunk gradients, mean over sampled joint-run steps",
)
