"""Affinity measures, one module each, and the registry that names them."""

from affinity.measures.base import Measure, ProbeRun
from affinity.measures.cka import CKA, linear_cka
from affinity.measures.grad_cosine import GRAD_COSINE
from affinity.measures.lookahead import LOOKAHEAD
from affinity.measures.pairwise import PAIRWISE
from affinity.measures.transfer import TRANSFER

MEASURES: dict[str, Measure] = {
    m.name: m for m in (GRAD_COSINE, LOOKAHEAD, CKA, TRANSFER, PAIRWISE)
}

__all__ = ["MEASURES", "Measure", "ProbeRun", "linear_cka"]
