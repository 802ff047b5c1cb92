"""Partitions of the tasks from clustering the affinity graph, each with quality scores.

The (T, T) affinity is symmetrised, S = (A + A^T) / 2, and shifted so that its smallest
off-diagonal entry is 0, giving non-negative edge weights. Methods: spectral and average-link
agglomerative clustering (scikit-learn) for a given number of clusters k, and Louvain
community detection (networkx), which chooses its own number of communities.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from sklearn.cluster import AgglomerativeClustering, SpectralClustering

from affinity.grouping.gain import group_gains

CLUSTERING_METHODS = ("spectral", "agglomerative", "louvain")


def similarity(affinity: np.ndarray) -> np.ndarray:
    """Symmetric, non-negative similarity with a zero diagonal, shape (n_tasks, n_tasks)."""
    s = (np.asarray(affinity, dtype=float) + np.asarray(affinity, dtype=float).T) / 2
    off = ~np.eye(len(s), dtype=bool)
    s = s - s[off].min() if len(s) > 1 else s
    s[~off] = 0.0
    return s


def _graph(sim: np.ndarray) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(len(sim)))
    graph.add_weighted_edges_from((i, j, sim[i, j]) for i in range(len(sim))
                                  for j in range(i + 1, len(sim)) if sim[i, j] > 0)
    return graph


def _parts(labels: np.ndarray) -> list[list[int]]:
    order = {label: n for n, label in enumerate(dict.fromkeys(labels.tolist()))}
    parts: list[list[int]] = [[] for _ in order]
    for task, label in enumerate(labels.tolist()):
        parts[order[label]].append(task)
    return parts


def cluster_tasks(affinity: np.ndarray, method: str, k: int | None = None) -> list[list[int]]:
    """Partition the tasks. affinity : ndarray of shape (n_tasks, n_tasks).

    ``k`` (number of clusters) is required for spectral and agglomerative, ignored by louvain.
    """
    sim = similarity(affinity)
    n = len(sim)
    if method == "louvain":
        communities = nx.community.louvain_communities(_graph(sim), weight="weight", seed=0)
        return sorted(sorted(c) for c in communities)
    if method not in CLUSTERING_METHODS:
        raise ValueError(f"method must be one of {', '.join(CLUSTERING_METHODS)}; got {method!r}")
    if k is None or not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of tasks ({n}); got {k}")
    if k == 1:
        return [list(range(n))]
    if k == n:
        return [[t] for t in range(n)]
    if method == "spectral":
        model = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=0)
        labels = model.fit_predict(sim + 1e-9 * (1 - np.eye(n)))
    else:
        dist = sim.max() - sim
        np.fill_diagonal(dist, 0)
        model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average")
        labels = model.fit_predict(dist)
    return sorted(_parts(labels))


def partition_quality(affinity: np.ndarray, parts: list[list[int]],
                      rule: str = "sum") -> dict[str, float]:
    """Weighted modularity of the partition and its summed predicted gain under ``rule``."""
    graph = _graph(similarity(affinity))
    modularity = (nx.community.modularity(graph, [set(p) for p in parts], weight="weight")
                  if graph.size(weight="weight") > 0 else 0.0)
    return {"modularity": float(modularity) + 0.0,  # + 0.0 turns -0.0 into 0.0
            "predicted_gain": float(np.nansum(group_gains(affinity, parts, rule)))}
