"""The report: a self-contained ``report.html`` (figures embedded) and the figures as PNG."""

from __future__ import annotations

import base64
import html
import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.cluster.hierarchy import dendrogram, linkage  # noqa: E402
from scipy.spatial.distance import squareform  # noqa: E402

from affinity.grouping.clustering import similarity  # noqa: E402
from affinity.result import MeasureResult, Result  # noqa: E402
from affinity.result_models import GroupingEntry  # noqa: E402
from affinity.verdict import is_the_baseline  # noqa: E402

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-size:1.3rem;font-weight:600;background:#eef5ff;padding:.6rem .8rem;
  border-left:4px solid #246}
.warning{background:#fff6e0;border-left:4px solid #c80;padding:.4rem .8rem}
.meta{color:#666} .bad{color:#b00} .good{color:#070} img{max-width:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1rem}
"""


MAX_ANNOTATED = 12  # tasks up to which the heatmaps print each cell's value
SHARES = {"conflict_rate"}  # diagnostics that are shares of sampled steps (0 to 1)


def _cell_scale(bound: float) -> float:
    """A power of ten that keeps every cell's label short: 1 for values of 0.1 and more,
    else the largest value's order (labels then read as multiples of it, one decimal)."""
    if bound <= 0 or bound >= 0.1:
        return 1.0
    return float(10.0 ** np.floor(np.log10(bound)))


def heatmap(tasks: list[str], m: MeasureResult, title: str,
            unmeasured: list[list[str]] | None = None) -> plt.Figure:
    """The matrix as a heatmap; the cells of ``unmeasured`` pairs (both directions) are drawn
    blank with "n/m", their values being fills, not measurements."""
    n = len(tasks)
    blank = np.zeros((n, n), dtype=bool)
    for a, b in unmeasured or []:
        i, j = tasks.index(a), tasks.index(b)
        blank[i, j] = blank[j, i] = True
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    off = m.matrix[~np.eye(n, dtype=bool) & ~blank]
    bound = float(np.abs(off).max()) if off.size else 1.0
    scale = _cell_scale(bound)
    shown_matrix = np.ma.masked_array(m.matrix, mask=blank)
    if title in SHARES:  # a share of sampled steps: 0 to 1, one-sided
        im = ax.imshow(shown_matrix, cmap="Reds", vmin=0.0, vmax=1.0)
    else:  # the cells and the colour bar on one scale
        im = ax.imshow(shown_matrix / scale, cmap="RdBu", vmin=-bound / scale,
                       vmax=bound / scale)
    ax.set_xticks(range(n), tasks, rotation=45, ha="right")
    ax.set_yticks(range(n), tasks)
    ax.set_xlabel("target task j")
    ax.set_ylabel("source task i")
    ax.set_title(title if scale == 1 else f"{title} (x 1e{round(np.log10(scale))})",
                 fontsize=10)
    if n <= MAX_ANNOTATED:  # beyond, the cells are too small for numbers: the colours speak
        for i in range(n):
            for j in range(n):
                if blank[i, j]:
                    ax.text(j, i, "n/m", ha="center", va="center", fontsize=6, color="grey")
                    continue
                v = m.matrix[i, j]
                shown = round(v / scale, 1) if scale != 1 else round(v, 2)
                ax.text(j, i, f"{shown + 0.0:.{1 if scale != 1 else 2}f}", ha="center",
                        va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * bound else "black")
    bar = fig.colorbar(im, ax=ax, shrink=0.8)
    if scale != 1:
        bar.set_label(f"x 1e{round(np.log10(scale))}", fontsize=8)
    fig.tight_layout()
    return fig


def dendrogram_figure(tasks: list[str], matrix: np.ndarray, measure: str) -> plt.Figure:
    sim = similarity(matrix)
    dist = sim.max() - sim
    np.fill_diagonal(dist, 0)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(tasks)), 4.0))
    dendrogram(linkage(squareform(dist, checks=False), method="average"), labels=tasks, ax=ax,
               leaf_rotation=45, leaf_font_size=8)
    for label in ax.get_xticklabels():  # anchored at their leaf, so long names do not collide
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.set_title(f"{measure}: average-link dendrogram\n(a higher join: less affinity)",
                 fontsize=10)
    ax.set_ylabel("distance", fontsize=10)
    fig.tight_layout()
    return fig


def gains_figure(tasks: list[str], entry: GroupingEntry) -> plt.Figure:
    """Each task's measured gain (vs training it alone) in the recommended groups, with its
    95% interval over the race's seeds, or its predicted gain when nothing was measured."""
    measured = bool(entry.measured)
    gains = [entry.measured[t].gain if measured else (entry.predicted_gain or {})[t]
             for t in tasks]
    spread = [entry.measured[t].gain_halfwidth for t in tasks] if measured else []
    x = np.arange(len(tasks))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(tasks)), 3.2))
    ax.bar(x, gains, 0.7, color=["#2a7" if g >= 0 else "#c44" for g in gains],
           yerr=spread if spread and None not in spread else None, capsize=3,
           error_kw={"elinewidth": 0.8})
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, tasks, rotation=45, ha="right")
    ax.set_ylabel("relative loss drop vs alone")
    ax.set_title(f"k = {entry.k}: {'measured' if measured else 'predicted'} gain per task"
                 + (" (95% intervals)" if spread and None not in spread else ""), fontsize=10)
    fig.tight_layout()
    return fig


def budget_figure(entries: list[GroupingEntry]) -> plt.Figure:
    """The best choice of k groups against the better baseline, per k, with 95% intervals."""
    shown = [(e.k, e.improvement, e.interval) for e in entries
             if e.interval and e.improvement is not None]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.2 * len(shown) + 1.5), 3.0))
    ks = [k for k, _, _ in shown]
    mid = [100 * m for _, m, _ in shown]
    err = [[100 * (m - i[0]) for _, m, i in shown], [100 * (i[1] - m) for _, m, i in shown]]
    ax.errorbar(ks, mid, yerr=err, fmt="o", capsize=5, color="#246")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(ks, [f"k = {k}" for k in ks])
    ax.set_xlim(min(ks) - 0.5, max(ks) + 0.5)
    ax.set_ylabel("% less total loss")
    ax.set_title("best k groups vs the better baseline (95%)", fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig: plt.Figure, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode()


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _num(v: float, signed: bool = True) -> str:
    """A numeric table cell; signed values are green when positive, red when negative."""
    if not signed:
        return f'<td class="num">{v + 0.0:.4g}</td>'  # + 0.0: no "-0"
    tone = "good" if v > 0 else "bad" if v < 0 else ""
    return f'<td class="num {tone}">{v:+.3f}</td>'


def _pct(v: float) -> str:
    """A signed percentage cell, green when positive, red when negative."""
    tone = "good" if v > 0 else "bad" if v < 0 else ""
    return f'<td class="num {tone}">{100 * v:+.1f}%</td>'


def write_report(result: Result, out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``figures/*.png`` into ``out_dir``; return the HTML path.
    The plotting libraries' layout warnings (long task names, a flat dendrogram) are kept
    from the terminal: the figures are drawn regardless."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _write_report(result, out_dir)


def _aux_cell(c: dict) -> str:
    """One auxiliary candidate: its score (± std over seeds, none from one seed), ✔ when
    recommended, else ⚠ when predicted harmful: never both."""
    spread = "" if c["std"] is None else f"±{c['std']:.3f}"
    mark = " ✔" if c["selected"] else " ⚠" if c["harmful"] else ""
    return f"{html.escape(c['task'])} {c['score']:+.3f}{spread}{mark}"


def _write_report(result: Result, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    tasks, meta = result.tasks, result.meta
    e = html.escape
    driver, cost, ver = meta.driving_measure, meta.cost, result.verification
    chose = ver.selection_seeds if ver else []
    fresh = ver.confirmation_seeds if ver else []
    parts = [f"<h1>Task affinity: {e(meta.name or 'task set')}</h1>",
             f"<p class=verdict>{e(result.verdict)}</p>",
             *(f"<p class=warning>Warning: {e(w)}</p>" for w in meta.warnings),
             f"<p class=meta>{len(tasks)} tasks · {meta.probe_seeds} probe seed(s), "
             f"candidates chosen on {len(chose)} seed(s) and confirmed on {len(fresh)} fresh "
             f"seed(s) · {meta.n_train} training / {meta.n_val} validation rows · device "
             f"{e(meta.device)} · {meta.seconds:.1f} s · {cost.training_runs:.1f} of "
             f"{cost.budget:.1f} training runs</p>"]
    if result.groupings:
        parts.append("<h2>Groupings</h2><p>For each budget k: what to train (of the best "
                     "measured k groups and the two baselines, the one of the lowest "
                     "expected total loss given all the evidence; a decision, not a claim), "
                     "and the best k groups against the better baseline, with a 95% interval "
                     "from seed-paired differences of the total validation loss on the fresh "
                     "seeds, which chose nothing. Where the difference is not beyond noise, "
                     "either will do. Groups may overlap: each task is served by one of its "
                     "groups (the <i>serves</i> column below).</p>")
        parts.append(_table(["k", "train", "best k groups", "vs", "improvement", "95% interval",
                             "beyond noise"], [
            [str(g.k), e(g.kind.replace("_", "-")),
             e(" | ".join(", ".join(x) for x in g.best_groups or g.groups)),
             e("— (it is the better baseline)" if is_the_baseline(g)
               else (g.baseline or "—").replace("_", "-")),
             _pct(g.improvement) if g.improvement is not None else "—",
             e(f"{100 * g.interval[0]:+.1f}% to {100 * g.interval[1]:+.1f}%")
             if g.interval else "—",
             "yes" if g.significant else "worse" if g.worse_beyond_noise else "no"]
            for g in result.groupings]))
        if any(g.interval for g in result.groupings):
            parts.append(_img(_png(budget_figure(result.groupings), figures / "budgets.png"),
                              "improvement per k"))
        parts.append("<p><b>How to choose k.</b> Take the smallest k whose improvement is "
                     "beyond noise (its interval above 0): each extra group is one more "
                     "network to train and serve. When no k is beyond noise, the verdict's "
                     "choice is still the better bet, though not by much; more seeds (a "
                     "larger <code>budget.training_runs</code>) narrow the intervals.</p>")
        for entry in result.groupings:
            rows = []
            for gi, group in enumerate(entry.groups):
                served = [t for t in tasks if entry.served_by.get(t) == gi]
                rows.append([str(gi + 1), e(", ".join(group)), e(", ".join(served) or "—")])
            total = (f"measured total loss {entry.measured_total_loss:.4g}; "
                     if entry.measured_total_loss is not None else "")
            parts.append(f"<h3>k = {entry.k}: {e(entry.kind.replace('_', '-'))} "
                         f"<span class=meta>({total}{e(entry.selected_by)})</span></h3>")
            parts.append(_table(["group", "members", "serves"], rows))
            parts.append(_img(_png(gains_figure(tasks, entry),
                                   figures / f"grouping_k{entry.k}.png"),
                              f"gains for k={entry.k}"))
    parts.append("<h2>Affinity matrices</h2><p>Row = source task i, column = target task j; "
                 "larger means training with i helps j more. Mean over seeds; standard "
                 "deviations are in <code>matrices/*_std.csv</code>.</p><div class=grid>")
    untrained = result.meta.untrained_pairs
    if untrained:
        parts.append(f"<p>{len(untrained)} pairs were not trained (the budget did not reach "
                     "them): their pairwise cells read n/m (not measured).</p>")
    for name, m in {**result.affinity, **result.diagnostics}.items():
        parts.append(_img(_png(heatmap(tasks, m, name, untrained if name == "pairwise"
                                       else None), figures / f"{name}.png"), name))
    parts.append("</div>")
    if driver and len(tasks) > 2:
        parts.append("<h2>Dendrogram</h2>")
        parts.append(_img(_png(dendrogram_figure(tasks, result.affinity[driver].matrix, driver),
                               figures / "dendrogram.png"), "dendrogram"))
    if result.clusterings:
        parts.append("<h2>Clusterings of the affinity graph</h2>")
        parts.append(_table(["method", "k", "groups", "modularity", "predicted gain"], [
            [c["method"], str(c["k"]), e(" | ".join(", ".join(g) for g in c["groups"])),
             _num(c["modularity"], False), _num(c["predicted_gain"])]
            for c in result.clusterings]))
    if result.auxiliary:
        one_seed = any(c["std"] is None for r in result.auxiliary.values() for c in r)
        parts.append("<h2>Auxiliary tasks</h2><p>Candidates ranked by their predicted "
                     "affinity onto the primary task ("
                     + ("1 seed: no spread" if one_seed else "± std over seeds") +
                     "); ✔ recommended: measured on fresh seeds to beat the primary alone "
                     "beyond noise, whatever its rank; ⚠ predicted harmful (negative "
                     "affinity) and not recommended.</p>")
        aux_ver = result.verification.auxiliary if result.verification else {}
        rows = []
        for primary, ranked in result.auxiliary.items():
            cells = " ".join(_aux_cell(c) for c in ranked)
            measured = aux_ver.get(primary)
            rows.append([e(primary), e(measured.verdict) if measured else "not measured",
                         cells])
        parts.append(_table(["primary", "measured", "candidates, best first"], rows))
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>taskaffinity report"
            f"</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out / "report.html"
    path.write_text(page)
    return path
