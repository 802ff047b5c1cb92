"""The race: seed-paired comparisons, successive halving, the budget, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from affinity.candidates import auxiliary_contest, baselines, grouping_contest
from affinity.decision import expected_gains
from affinity.race import Candidate, Contest, Measurements, run_race, winner
from affinity.recommend import auxiliary_choice, grouping_entry
from affinity.result_models import GroupingEntry
from affinity.stats import Prior, compare, network_prior, variance_prior
from affinity.verdict import verdict
from tests.conftest import pair_beside_the_rest

TASKS = ["a", "b", "c", "d"]
E = GroupingEntry.model_validate
EVERYONE = (0, 1, 2, 3)


def planted(seed: int, group: tuple[int, ...]) -> np.ndarray:
    """Loss 1 per task alone; 0.8 with its planted partner ({a, b} and {c, d} help each
    other); 1.3 in any other group (negative transfer); seed noise of 0.01."""
    noise = np.random.default_rng([seed, *group]).normal(0, 0.01, 4)
    loss = np.full(4, np.nan)
    for j in group:
        partner = {0: 1, 1: 0, 2: 3, 3: 2}[j]
        if len(group) == 1:
            loss[j] = 1.0
        elif set(group) == {j, partner}:
            loss[j] = 0.8
        else:
            loss[j] = 1.3
        loss[j] += noise[j]
    return loss


def trainer(measured: Measurements, log: list):
    def train(groups, seed, then=()):
        log.append((seed, list(groups)))
        measured.add(seed, groups, np.stack([planted(seed, g) for g in groups]))
    return train


CONFIRMATION = [500, 501, 502]


def confirm(contest: Contest, measured: Measurements, selection: list[int]) -> None:
    """The confirmation round: the winner and the baselines on three fresh seeds."""
    best = winner(contest, measured, selection)
    groups = sorted({g for c in [best, *contest.baselines] for g in c.groups})
    for seed in CONFIRMATION:
        trainer(measured, [])(groups, seed)


def contest(*groupings) -> Contest:
    return Contest("k=2", [Candidate(g, EVERYONE) for g in groupings], baselines(4))


def test_compare_is_a_paired_t_interval_on_relative_differences():
    m = Measurements()
    ours, theirs = [0.9, 0.8, 0.85, 0.95], [1.0, 0.9, 1.0, 1.02]
    for s, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        m.add(s, [(0,)], np.array([[a]]))
        m.loss[(0, 9), s] = np.array([b])  # the baseline's network, another group
    mine = Candidate(((0,),), (0,))
    base = Candidate(((0, 9),), (0,), "alone")
    c = compare(m, mine, base, range(4))
    diff = (np.array(theirs) - np.array(ours)) / np.mean(theirs)
    lo, hi = stats.t.interval(0.95, 3, loc=diff.mean(), scale=stats.sem(diff))
    assert c.improvement == pytest.approx(diff.mean())
    assert c.interval == pytest.approx((lo, hi)) and c.significant == (lo > 0)
    one = compare(m, mine, base, [0])
    assert one.interval is None and not one.significant  # one seed, no prior: no interval
    prior = Prior(0.01 ** 2, 5.0)  # with a prior (the networks' spread), one seed has one
    pooled = compare(m, mine, base, [0], prior)
    half = stats.t.ppf(0.975, 5.0) * 0.01
    first = (theirs[0] - ours[0]) / theirs[0]
    assert pooled.interval == pytest.approx((first - half, first + half))


def test_race_finds_the_planted_grouping_and_halves():
    measured, log = Measurements(), []
    race = contest(((0, 2), (1, 3)), ((0, 1, 2), (3,)), ((0, 1), (2, 3)), ((0, 3), (1, 2)))
    used = run_race([race], measured, range(4), trainer(measured, log),
                    lambda n, share, then: True)
    assert used == [0, 1]  # 4 -> 2 -> 1: selection is over, the rest is confirmation's
    best = winner(race, measured, used)
    assert best.groups == ((0, 1), (2, 3))
    assert len(race.candidates) == 1
    trained = [len(groups) for _, groups in log]
    assert trained[0] == 4 + 1 + 7  # singles, all-in-one and the candidates' 7 other groups
    assert trained[-1] == 4 + 1 + 3  # baselines race every round, beside two survivors'
    confirm(race, measured, used)
    entry = grouping_entry(TASKS, race, measured, used, CONFIRMATION, 2)
    assert entry.kind == "groups" and entry.groups == [["a", "b"], ["c", "d"]]
    assert entry.served_by == {"a": 0, "b": 0, "c": 1, "d": 1}
    assert entry.confirmation_seeds == CONFIRMATION and entry.selection_seeds == [0, 1]
    assert entry.measured["a"].gain == pytest.approx(0.2, abs=0.05)
    alone = np.array([planted(s, (0,))[0] for s in CONFIRMATION])  # a alone and with b
    paired = np.array([planted(s, (0, 1))[0] for s in CONFIRMATION])
    diff = (alone - paired) / alone.mean()
    lo, hi = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert entry.measured["a"].gain_halfwidth == pytest.approx((hi - lo) / 2, rel=1e-4)
    assert entry.baseline == "single_task" and entry.significant
    assert entry.improvement == pytest.approx(0.2, abs=0.02)
    assert "k = 2 groups cut the total loss by 20%" in verdict([entry])


def test_the_interval_comes_from_the_confirmation_seeds_only():
    """On the selection seed the groups lead by 30% (a lucky draw that chose them); on the
    fresh seeds by 1%, 2% and 3%: the improvement and its interval are the fresh seeds'."""
    measured = Measurements()
    groups = [(0,), (1,), (2,), (3,), EVERYONE, (0, 1), (2, 3)]
    for s, edge in {0: 0.3, 500: 0.01, 501: 0.02, 502: 0.03}.items():
        loss = [np.where(np.isin(range(4), g), 1.0 + 0.5 * (len(g) == 1)
                         - edge * (len(g) == 2), np.nan) for g in groups]
        measured.add(s, groups, np.stack(loss))
    entry = grouping_entry(TASKS, contest(((0, 1), (2, 3))), measured, [0], CONFIRMATION, 2)
    assert entry.improvement == pytest.approx(0.02)
    assert np.mean(entry.interval) == pytest.approx(0.02, abs=1e-6)
    assert entry.interval[1] < 0.3


def test_the_network_prior_is_the_sum_of_the_networks_spreads():
    """Against a naive reference: each network's served losses summed per seed, their
    variances over every seed the network trained on added up, Welch-Satterthwaite's
    degrees of freedom; a task served by the same network in both candidates cancels."""
    rng = np.random.default_rng(7)
    measured = Measurements()
    groups = [(0,), (1,), (2,), (3,), (0, 1)]
    trained_on = {(0,): [0, 1, 2, 500], (1,): [0, 500], (2,): [0, 500], (3,): [0, 500],
                  (0, 1): [0, 3, 500]}
    for g in groups:
        for s in trained_on[g]:
            loss = np.full(4, np.nan)
            loss[list(g)] = 1 + rng.normal(0, 0.1, len(g))
            measured.add(s, [g], loss[None])
    pair = Candidate(((0, 1), (2,), (3,)), EVERYONE)
    single = baselines(4)[1]
    prior = network_prior(measured, pair, single, [500])
    assert prior is not None
    parts = [np.array([measured.loss[(0, 1), s][[0, 1]].sum() for s in trained_on[(0, 1)]]),
             np.array([measured.loss[(0,), s][0] for s in trained_on[(0,)]]),
             np.array([measured.loss[(1,), s][1] for s in trained_on[(1,)]])]
    var = np.array([p.var(ddof=1) for p in parts])
    dfs = np.array([len(p) - 1 for p in parts])
    scale = measured.scores(single, [500]).mean()
    assert prior.variance == pytest.approx(var.sum() / scale ** 2)
    assert prior.df == pytest.approx(var.sum() ** 2 / (var ** 2 / dfs).sum())
    # a network measured on one seed has no spread to go by
    measured.add(500, [(2, 3)], np.array([[np.nan, np.nan, 0.9, 0.9]]))
    assert network_prior(measured, Candidate(((0, 1), (2, 3)), EVERYONE), single,
                         [500]) is None


def test_two_fresh_seeds_that_agree_by_chance_give_no_narrow_interval():
    """The networks vary by 5% from seed to seed; on the two fresh seeds the groups happen to
    lead by 2.00% and 2.01%. Their own variance would give an interval of +-0.06%; the
    networks' spread widens it to what their seeds support. The claim is within noise; the
    decision still trains the groups, which lead on every seed that measured them."""
    rng = np.random.default_rng(3)
    measured = Measurements()
    groups = [(0,), (1,), (2,), (3,), EVERYONE, (0, 1), (2, 3)]
    for s in range(6):
        measured.add(s, groups, np.stack([np.where(np.isin(range(4), g), 1 + rng.normal(
            0, 0.05), np.nan) for g in groups]))
    for s, edge in {500: 0.0200, 501: 0.0201}.items():
        measured.add(s, groups, np.stack([np.where(np.isin(range(4), g), 1.0 - edge * (
            len(g) == 2), np.nan) for g in groups]))
    race = contest(((0, 1), (2, 3)))
    entry = grouping_entry(TASKS, race, measured, list(range(6)), [500, 501], 2)
    lo, hi = entry.interval
    assert entry.improvement == pytest.approx(0.02005, abs=1e-6)
    assert hi - lo > 0.05 and not entry.significant and not entry.worse_beyond_noise


def test_harmful_groupings_leave_the_better_baseline_and_say_it_is_worse_beyond_noise():
    measured, log = Measurements(), []
    race = contest(((0, 2), (1, 3)), ((0, 3), (1, 2)))  # only harmful groupings
    used = run_race([race], measured, range(3), trainer(measured, log),
                    lambda n, share, then: True)
    confirm(race, measured, used)
    entry = grouping_entry(TASKS, race, measured, used, CONFIRMATION, 2)
    assert entry.kind == "single_task" and entry.groups == [["a"], ["b"], ["c"], ["d"]]
    assert entry.expected_improvement == 0.0 and entry.best_expected_improvement < 0
    assert not entry.significant and entry.improvement < 0
    assert entry.worse_beyond_noise and entry.interval[1] < 0
    assert entry.best_groups in ([["a", "c"], ["b", "d"]], [["a", "d"], ["b", "c"]])
    assert verdict([entry]).startswith("train every task alone: the best measured groups are "
                                       "worse beyond noise (k = 2: -")


def test_a_lead_within_noise_is_trained_and_called_noise():
    """Two fresh seeds on which the planted groups lead one network for all by 3% and by -1%
    (singles trail both): the lead is within noise, but it is the better bet, so the groups
    are what to train, and the verdict says that either is about as good."""
    edge = {0: 0.05, 500: 0.03, 501: -0.01}
    measured = Measurements()
    for s in edge:
        groups = [(0,), (1,), (2,), (3,), EVERYONE, (0, 1), (2, 3)]
        loss = [np.where(np.isin(range(4), g), 1.0 + 0.1 * (len(g) == 1)
                         - edge[s] * (len(g) == 2), np.nan) for g in groups]
        measured.add(s, groups, np.stack(loss))
    entry = grouping_entry(TASKS, contest(((0, 1), (2, 3))), measured, [0], [500, 501], 2)
    assert entry.kind == "groups" and entry.groups == [["a", "b"], ["c", "d"]]
    assert entry.best_groups == entry.groups and entry.expected_improvement > 0
    assert entry.baseline == "all_in_one" and not entry.significant
    assert entry.improvement == pytest.approx(0.01)
    lo, hi = entry.interval
    assert verdict([entry]) == (
        "train k = 2 groups (a, b; c, d): they measured 1.0% lower in total loss than one "
        f"network for all tasks, within noise ({100 * lo:.1f}% to {100 * hi:.1f}%); either is "
        "about as good")


def test_budget_drops_the_last_candidates_then_stops():
    measured, log = Measurements(), []
    race = contest(((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))
    seen = []

    def affords(groups, share, then):
        seen.append((len(groups), share))
        return len(groups) <= 9 and len(log) < 2  # two rounds of at most 9 networks

    used = run_race([race], measured, range(5), trainer(measured, log), affords)
    assert used == [0]  # two candidates left, halved to one: selection is over
    assert log[0][1] == sorted(log[0][1], key=lambda g: (len(g), g)) and len(log[0][1]) == 9
    # round 0 could not afford all three candidates (11 networks): the last one was dropped
    assert seen[0] == (11, 1 / 3) and all(c.groups != ((0, 3), (1, 2)) for c in race.candidates)
    assert winner(race, measured, used).groups == ((0, 1), (2, 3))


def test_the_first_round_keeps_room_for_a_second():
    """Room for 18 networks in all. The first round (the probes' seed) would train 13 (4
    singles, the all-in-one network, 6 pairs and 2 groups of 3), leaving too few for the
    least second round (the baselines and the best candidate's 2 groups: 7), so it drops its
    last two candidates (11 networks), and is told to leave room for those 7; then a second
    seed runs with the best candidate."""
    measured, log = Measurements(), []
    race = contest(((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)), ((0, 1, 2), (3,)),
                   ((0, 1, 3), (2,)))
    spent: list[int] = []

    def affords(groups, share, then):  # share is left out: this budget is all for the race
        left = 18 - sum(spent)
        return len(groups) + len(then) <= left

    reserved = []

    def train(groups, seed, then):
        spent.append(len(groups))
        reserved.append(len(then))
        trainer(measured, log)(groups, seed)

    used = run_race([race], measured, range(3), train, affords)
    assert spent == [11, 7] and used == [0, 1] and reserved == [7, 0]
    assert winner(race, measured, used).groups == ((0, 1), (2, 3))


def test_without_a_fresh_seed_the_measured_lead_is_recommended_unclaimed():
    """On one seed (the probes', which chose the candidates) the planted groups measure
    20% below single-task training. With no confirmation seed there is no claim, but the
    measured lead is still the better bet: the groups are what to train, and the verdict
    says that no fresh seed confirmed them."""
    measured = Measurements()
    trainer(measured, [])([(0,), (1,), (2,), (3,), EVERYONE, (0, 1), (2, 3)], 0)
    entry = grouping_entry(TASKS, contest(((0, 1), (2, 3))), measured, [0], [], 2)
    assert entry.best_groups == [["a", "b"], ["c", "d"]] and entry.improvement is None
    assert entry.kind == "groups" and entry.interval is None
    assert entry.expected_improvement == pytest.approx(0.2, abs=0.02)
    assert verdict([entry]).endswith("(not confirmed on a fresh seed: no interval)")


def test_verdict_sentences():
    base = {"k": 2, "kind": "all_in_one", "groups": [["a", "b"]], "baseline": "all_in_one",
            "best_groups": [["a"], ["b"]], "expected_improvement": 0.0,
            "improvement": -0.01, "interval": [-0.04, 0.02], "significant": False,
            "worse_beyond_noise": False}
    assert verdict([E(base)]) == (
        "train all tasks in one network: it measured best; the best measured, k = 2 groups, "
        "differ by -1.0% in total loss, within noise (-4.0% to 2.0%); either is about as good")
    worse = {**base, "improvement": -0.16, "interval": [-0.19, -0.14],
             "worse_beyond_noise": True}
    assert verdict([E(worse)]) == ("train all tasks in one network: the best measured groups are "
                                "worse beyond noise (k = 2: -16%, -19% to -14%)")
    ahead = {**base, "k": 3, "kind": "groups", "groups": [["a"], ["b"]],
             "expected_improvement": 0.05, "improvement": 0.06, "interval": [0.03, 0.09],
             "significant": True}
    assert verdict([E(base), E(ahead)]) == (
        "k = 3 groups cut the total loss by 6.0% (3.0% to 9.0%) against one network for all "
        "tasks: a; b")
    alone = {**base, "baseline": "single_task", "kind": "single_task", "interval": None}
    assert verdict([E(alone)]) == "train every task alone: it measured best of what was measured"
    assert "verification is off" in verdict([E({**base, "baseline": None})])


def test_variance_prior_pools_a_family_that_agrees():
    """Differences with one common spread: the prior is their pooled variance, worth the
    family's degrees of freedom, and it narrows a two-seed interval."""
    rng = np.random.default_rng(0)
    family = [rng.normal(0.1, 0.05, 2) for _ in range(40)]
    prior = variance_prior(family)
    assert prior.df == pytest.approx(40, rel=0.3)
    assert prior.variance == pytest.approx(0.05 ** 2, rel=0.5)
    m = Measurements()
    for s, (a, b) in enumerate([(0.85, 1.0), (0.95, 1.0)]):
        m.add(s, [(0,), (0, 9)], np.array([[a], [b]]))
    mine, base = Candidate(((0,),), (0,)), Candidate(((0, 9),), (0,), "alone")
    own, pooled = compare(m, mine, base, [0, 1]), compare(m, mine, base, [0, 1], prior)
    assert pooled.improvement == own.improvement
    assert pooled.interval[1] - pooled.interval[0] < (own.interval[1] - own.interval[0]) / 5


def test_variance_prior_of_a_wild_family_is_weak():
    """Spreads that differ a thousandfold: little pooling (few prior degrees of freedom)."""
    rng = np.random.default_rng(1)
    family = [rng.normal(0, s, 3) for s in np.geomspace(1e-3, 1, 30)]
    assert variance_prior(family).df < 3
    assert variance_prior([np.array([0.1, 0.2])]) is None  # one member: no family


def test_auxiliary_candidates_are_nested_best_partners_then_grouping_groups():
    pair_gain = np.array([[0, 0.3, 0.1, 0], [0.2, 0, 0, 0], [0.1, 0, 0, 0], [0.05, 0, 0, 0]])
    k2 = Contest("k=2", [Candidate(((0, 3), (1, 2)), EVERYONE)], baselines(4))
    aux = auxiliary_contest([("pairwise/sum", pair_gain, "sum")], 0, [k2], max_aux=2)
    assert [c.groups for c in aux.candidates] == [((0, 1),), ((0, 1, 2),), ((0, 3),)]
    assert aux.candidates[2].sources == ["k=2"]
    assert aux.baselines[0].kind == "alone" and aux.baselines[0].groups == ((0,),)


def test_auxiliaries_are_decided_by_all_evidence_and_claimed_one_sided():
    """p = task 0; with b its loss drops 10% on every seed: recommended, beyond noise on the
    fresh seeds (one-sided). With c the drop averages about zero: c is measured worse than p
    alone on the seeds that chose it, so p trains alone."""
    m = Measurements()
    drops = {(0, 1): [0.10, 0.12, 0.08, 0.11], (0, 2): [0.05, -0.06, 0.01, -0.02]}
    for s in range(4):
        m.add(s, [(0,)], np.array([[1.0, np.nan, np.nan, np.nan]]))
        for g, d in drops.items():
            m.add(s, [g], np.array([[1.0 - d[s], 1.0, np.nan, np.nan]]))
    alone = Candidate(((0,),), (0,), "alone")
    helps = Contest("aux", [Candidate(((0, 1),), (0,))], [alone])
    noise = Contest("aux", [Candidate(((0, 2),), (0,))], [alone])
    yes = auxiliary_choice(TASKS, helps, m, [0, 1], [2, 3])
    no = auxiliary_choice(TASKS, noise, m, [0, 1], [2, 3])
    assert yes.auxiliaries == ["b"] and yes.significant
    assert yes.improvement == pytest.approx(0.095)  # on the fresh seeds 2 and 3 only
    assert yes.confirmation_seeds == [2, 3]
    assert no.auxiliaries == [] and no.best_measured == ["c"] and not no.significant
    assert no.verdict.startswith("train a alone: its best measured auxiliaries (c) are "
                                    "not better beyond noise")


def test_the_winners_curse_is_shrunk_among_the_candidates_raced():
    """p = task 0, five auxiliary sets raced on two seeds: four near zero and {a, b} 30%
    ahead on one seed only (-10% on the other). Shrunk towards the candidates' mean, its
    expected gain is far below its raw 10%; a fresh seed that repeats 30% lifts it, and it
    is then what to train."""
    m = Measurements()
    drops = {(0, 1): [0.30, -0.10], (0, 2): [0.01, 0.00], (0, 3): [-0.01, 0.02],
             (0, 1, 2): [0.00, -0.01], (0, 1, 3): [0.01, 0.01]}
    for s in range(2):
        m.add(s, [(0,)], np.array([[1.0, np.nan, np.nan, np.nan]]))
        for g, d in drops.items():
            m.add(s, [g], np.array([[1.0 - d[s], *[np.nan] * 3]]))
    alone = Candidate(((0,),), (0,), "alone")
    race = Contest("aux", [Candidate((g,), (0,)) for g in drops], [alone])
    before = auxiliary_choice(TASKS, race, m, [0, 1], [])
    assert before.best_measured == ["b", "d"]  # 1% on both seeds: surer than {a, b}
    shrunk = expected_gains(m, race, alone, [0, 1], [])
    ab = next(e for e in shrunk if e.option.groups == ((0, 1),))
    assert ab.gain < 0.10 / 2  # the raw mean of {a, b} is 10%
    m.add(500, [(0,), (0, 1)], np.array([[1.0, *[np.nan] * 3], [0.7, *[np.nan] * 3]]))
    after = auxiliary_choice(TASKS, race, m, [0, 1], [500])
    assert after.auxiliaries == ["b"] and after.confirmation_seeds == [500]
    assert after.expected_improvement > ab.gain


def test_a_task_in_two_groups_is_served_by_one_not_by_each_seeds_luckier():
    """Task a in {a, b} and {a, c}: 1 then 3 in one, 3 then 1 in the other. Its loss is 2 on
    average in either; the least of the two on each seed (1, 1) would be luck, not a gain."""
    measured = Measurements()
    rows = {(0, 1): ([1.0, 1.0, np.nan], [3.0, 1.0, np.nan]),
            (0, 2): ([3.0, np.nan, 1.0], [1.0, np.nan, 1.0])}
    for group, per_seed in rows.items():
        for seed, loss in enumerate(per_seed):
            measured.add(seed, [group], np.array([loss]))
    both = Candidate(((0, 1), (0, 2)), (0, 1, 2))
    np.testing.assert_allclose(measured.scores(both, [0, 1]), [3.0, 5.0])  # not [3, 3]
    assert measured.served(both, [0, 1]).tolist() == [0, 0, 1]
    assert measured.served(both, [0]).tolist() == [0, 0, 1]
    assert measured.served(both, [1]).tolist() == [1, 0, 1]


def test_serving_is_chosen_on_the_seeds_that_trained_the_candidate():
    """{a, b} and {a, c} trained on seed 0 and fresh seed 500 only: asked to serve on seeds
    0 and 1 (the race's), the choice reads seed 0 alone; a candidate never trained on the
    seeds asked to serve on is served by the seeds it is scored on; a seed with no network is
    never read."""
    measured = Measurements()
    measured.add(0, [(0, 1), (0, 2)], np.array([[1.0, 1.0, np.nan], [3.0, np.nan, 1.0]]))
    measured.add(500, [(0, 1), (0, 2)], np.array([[4.0, 1.0, np.nan], [2.0, np.nan, 1.0]]))
    both = Candidate(((0, 1), (0, 2)), (0, 1, 2))
    assert measured.served(both, [0, 1]).tolist() == [0, 0, 1]
    np.testing.assert_allclose(measured.scores(both, [500], serve_on=[0, 1]), [6.0])
    assert measured.served(both, [7], fallback=[500]).tolist() == [1, 0, 1]
    with pytest.raises(LookupError, match=r"no network trained for \[\(\(0, 1\), 1\)"):
        measured.scores(both, [0, 1])


def test_with_nothing_affordable_the_race_keeps_whatever_seed_0_trained():
    """The probes trained the baselines and only the groups of the last candidate in
    priority order; with no budget left for anything, that candidate is measured, not the
    ones the trimming would have kept."""
    measured = Measurements()
    trained = [(0,), (1,), (2,), (3,), EVERYONE, (0, 3), (1, 2)]
    measured.add(0, trained, np.stack([planted(0, g) for g in trained]))
    race = contest(((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))
    used = run_race([race], measured, range(3), trainer(measured, []),
                    lambda n, share, then: n == -1)
    assert used == [0]
    assert [c.groups for c in race.candidates] == [((0, 3), (1, 2))]


def test_a_grouping_contest_holds_the_all_in_one_network_plus_the_groups_it_needs():
    """Beside every predictor's choices, k = 2 races the whole set plus the group the first
    predictor expects to help most beside it; every predictor's favourite comes first."""
    a = pair_beside_the_rest()
    sources = [("first/sum", a, "sum"), ("second/mean", -a, "mean")]
    contest = grouping_contest(sources, 4, 2, n_best=2)
    plus = [c for c in contest.candidates if "all_in_one_plus/first/sum" in c.sources]
    assert [c.groups for c in plus] == [((0, 1), (0, 1, 2, 3))]
    assert contest.candidates[0].sources[0] == "first/sum"
    assert contest.candidates.index(plus[0]) <= 2
    assert [b.kind for b in contest.baselines] == ["all_in_one", "single_task"]
    assert not any("all_in_one_plus" in s for c in grouping_contest(sources, 4, 1, 2).candidates
                   for s in c.sources)


def test_the_planned_race_halves_as_the_race_does_and_counts_what_each_seed_lacks():
    """Known answer, one network = one run: on seed 0 (the probes': the baselines and (0, 1),
    (2, 3) trained) the three candidates' four other groups; on seed 1 the better two and
    every baseline network (five); then one candidate is left: the race is over. The room
    caps it (none left: nothing); leaders who race on while the budget lasts take all of it."""
    from affinity.race import planned_race

    measured = Measurements()
    trained = [EVERYONE, (0,), (1,), (2,), (3,), (0, 1), (2, 3)]
    measured.add(0, trained, np.stack([planted(0, g) for g in trained]))
    race = contest(((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))
    assert planned_race([race], measured, [0, 1, 2], len, room=100) == 4 + (5 + 4)
    assert planned_race([race], measured, [0, 1, 2], len, room=6) == 6
    assert planned_race([race], measured, [0, 1, 2], len, room=-1) == 0  # nothing left
    assert planned_race([race], measured, [0, 1, 2], len, room=100, leaders=2) == 100
    assert len(race.candidates) == 3  # the plan changes nothing
