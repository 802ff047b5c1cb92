"""TAG's lookahead affinity: Z[i][j] = 1 - L_j(theta - eta g_i) / L_j(theta) (joint run)."""

from affinity.measures.base import Measure

LOOKAHEAD = Measure(
    name="lookahead",
    needs=frozenset({"joint"}),
    compute=lambda run: run.joint_probe.lookahead,
    description="relative drop of target j's batch loss after a trunk step on source i's "
                "gradient, mean over sampled joint-run steps",
)
