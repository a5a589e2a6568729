"""The statistics verdicts are decided on (against scipy on known inputs) and the rule vocabulary's outcomes."""

from __future__ import annotations

import math

import pytest
from runfactory import write_run
from scipy import stats

from analysis.rules import (
    DOES_NOT_HOLD,
    EQUAL,
    HIGHER,
    HOLDS,
    INCONCLUSIVE,
    LOWER,
    Comparison,
    all_of,
    any_of,
    at_least,
    condition,
    decide,
    holm,
    judge,
    ratio_of_logs,
    steps_ratio,
    within,
)
from analysis.stats import equivalence_interval, one_sample, paired, seeds_needed, welch
from analysis.tables import load_all

A = [0.86, 0.87, 0.855, 0.861]
B = [0.84, 0.86, 0.83]


def test_welch_matches_scipy():
    d = welch(A, B)
    ref = stats.ttest_ind(A, B, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert d.mean == pytest.approx(sum(A) / 4 - sum(B) / 3)
    assert (d.low, d.high, d.p) == pytest.approx((ci.low, ci.high, ref.pvalue))
    assert (d.a_n, d.b_n, d.paired) == (4, 3, False)


def test_paired_matches_scipy_and_uses_the_seeds_both_arms_have():
    a, b = {0: 1.0, 1: 2.0, 2: 4.0, 7: 9.0}, {0: 0.5, 1: 1.2, 2: 2.0, 3: 0.0}
    d = paired(a, b)
    ref = stats.ttest_rel([1.0, 2.0, 4.0], [0.5, 1.2, 2.0])
    ci = ref.confidence_interval(0.95)
    assert (d.low, d.high, d.p) == pytest.approx((ci.low, ci.high, ref.pvalue))
    assert d.a_n == 3 and d.paired


def test_one_sample_against_a_constant_matches_scipy():
    d = one_sample(A, 0.85)
    ref = stats.ttest_1samp(A, 0.85)
    ci = ref.confidence_interval(0.95)
    assert (d.mean, d.low, d.high, d.p) == pytest.approx((sum(A) / 4 - 0.85, ci.low - 0.85, ci.high - 0.85, ref.pvalue))


def test_equivalence_interval_is_the_90_percent_interval_of_two_one_sided_tests():
    d = one_sample(A, 0.86)
    low, high = equivalence_interval(d)
    ref = stats.ttest_1samp(A, 0.86).confidence_interval(0.90)
    assert (low, high) == pytest.approx((ref.low - 0.86, ref.high - 0.86))
    # the TOST p-value is below 5% exactly when that interval lies inside the margin
    margin = max(abs(low), abs(high)) + 1e-6
    p_low = stats.ttest_1samp(A, 0.86 - margin, alternative="greater").pvalue
    p_high = stats.ttest_1samp(A, 0.86 + margin, alternative="less").pvalue
    assert max(p_low, p_high) == pytest.approx(0.05, abs=1e-4)


def test_seeds_needed_reaches_80_percent_power_by_the_noncentral_t():
    d = welch(A, B)
    n = seeds_needed(d)
    effect, sd = abs(d.mean), d.sd

    def power(n):  # two-sample t test, two-sided, n per arm, exact by the noncentral t
        df, nc = 2 * n - 2, effect / (sd * math.sqrt(2 / n))
        crit = stats.t.ppf(0.975, df)
        return stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)

    assert power(n) >= 0.78 and power(n - 1) < 0.8  # the approximation's n, within a hair of the exact one
    assert seeds_needed(one_sample([0.5, 0.5, 0.5])) is None  # no spread, nothing to go on


@pytest.mark.parametrize(
    "claim, margin, values, expected",
    [
        (HIGHER, 0.0, [0.01, 0.012, 0.011], HOLDS),
        (HIGHER, 0.0, [-0.01, -0.012, -0.011], DOES_NOT_HOLD),
        (HIGHER, 0.0, [0.01, -0.012, 0.003], INCONCLUSIVE),
        (HIGHER, 0.02, [0.01, 0.012, 0.011], DOES_NOT_HOLD),  # above 0, but not by the margin
        (LOWER, 0.0, [-0.01, -0.012, -0.011], HOLDS),
        (EQUAL, 0.005, [0.001, -0.001, 0.0005, 0.0], HOLDS),
        (EQUAL, 0.005, [0.02, 0.021, 0.019], DOES_NOT_HOLD),
        (EQUAL, 0.005, [0.004, -0.003, 0.009], INCONCLUSIVE),
    ],
)
def test_judge_decides_on_the_interval_of_the_difference(claim, margin, values, expected):
    result = judge("q", claim, margin, one_sample(values))
    assert result.outcome == expected, result.line()
    assert (result.seeds_needed is not None) == (expected == INCONCLUSIVE and claim != EQUAL) or claim == EQUAL


def test_two_overlapping_intervals_can_still_differ():
    # the review's case: each arm's interval overlaps the other's, yet the difference is clear
    a, b = [0.855, 0.862, 0.866], [0.865, 0.872, 0.876]
    ea, eb = stats.t.interval(0.95, 2, loc=sum(a) / 3, scale=stats.sem(a)), stats.t.interval(0.95, 2, loc=sum(b) / 3, scale=stats.sem(b))
    assert ea[1] > eb[0]  # the intervals overlap
    assert judge("q", LOWER, 0.0, welch(a, b)).outcome == INCONCLUSIVE  # Welch at n=3 cannot tell
    assert judge("q", LOWER, 0.0, paired(dict(enumerate(a)), dict(enumerate(b)))).outcome == HOLDS  # paired can


def runs_of(tmp_path, name, finals, **kw):
    for seed, final in enumerate(finals):
        write_run(tmp_path / name / str(seed), seed=seed, acc=lambda step, f=final: f if step else 0.1, **kw)
    return load_all(tmp_path / name)


def test_decide_with_too_few_runs_is_inconclusive(tmp_path):
    a, b = runs_of(tmp_path, "a", [0.9]), runs_of(tmp_path, "b", [0.8, 0.81])
    result = decide(Comparison("a ends higher", lambda r: r.summary["final_test_acc"], "acc", HIGHER), a, b)
    assert result.outcome == INCONCLUSIVE and "too few runs" in result.text


def test_diverged_runs_have_no_value_and_are_left_out(tmp_path):
    a = runs_of(tmp_path, "a", [0.9, 0.91, 0.92])
    write_run(tmp_path / "a" / "9", seed=9, diverged_at=300)
    result = decide(Comparison("a above chance", lambda r: r.summary["final_test_acc"], "acc", HIGHER, 0.1),
                    load_all(tmp_path / "a"), 0.1)
    assert result.outcome == HOLDS and result.difference.a_n == 3


def test_steps_ratio_pairs_by_seed_and_counts_runs_that_never_arrive(tmp_path):
    # a reaches the target at step 100 in each seed, b at 400; one b run never does: it counts as step 1100
    for seed in range(3):
        write_run(tmp_path / "a" / str(seed), seed=seed, acc=lambda step: 0.95 if step >= 100 else 0.1)
        never = seed == 2
        write_run(tmp_path / "b" / str(seed), seed=seed, acc=lambda step, n=never: 0.5 if n or step < 400 else 0.95)
    a, b = load_all(tmp_path / "a"), load_all(tmp_path / "b")
    from analysis.measures import reaches

    result = steps_ratio("a is faster", a, b, lambda run: 0.9, reaches)
    logs = [math.log(100 / 400), math.log(100 / 400), math.log(100 / 1100)]
    assert result.difference.mean == pytest.approx(sum(logs) / 3)
    assert result.outcome == HOLDS and "reached the target: 3/3 and 2/3" in result.text


def test_combinations_follow_their_stated_rule():
    yes, no, open_ = condition("y", True, ""), condition("n", False, ""), judge("o", HIGHER, 0.0, one_sample([0.1, -0.1, 0.05]))
    assert all_of("x", [yes, yes]).outcome == HOLDS
    assert all_of("x", [yes, open_]).outcome == INCONCLUSIVE
    assert all_of("x", [open_, no]).outcome == DOES_NOT_HOLD
    assert any_of("x", [no, yes]).outcome == HOLDS
    assert any_of("x", [no, open_]).outcome == INCONCLUSIVE
    assert any_of("x", [no, no]).outcome == DOES_NOT_HOLD
    assert all_of("x", [yes, open_]).seeds_needed == open_.seeds_needed


def test_a_decided_comparison_says_how_far_it_is_from_flipping():
    held = judge("q", HIGHER, 0.1, one_sample([0.3, 0.32, 0.31]))
    assert held.flip_margin() == f"the interval's nearer end is {held.difference.low - 0.1:.3g} from +0.1"
    assert judge("q", HIGHER, 0.0, one_sample([0.01, -0.012, 0.003])).flip_margin() == ""  # open: nothing to flip


# --- the failing side of a conjunction, margins, the direction of an open comparison ---------------


def failing(p_value: float, n: int = 10) -> "object":
    """A "higher" comparison whose one-sided p of failing is about p_value (values of n seeds against 0)."""
    t = stats.t.ppf(p_value, n - 1)  # mean / se = t, below 0: points against "higher"
    values = [t / math.sqrt(n) + x for x in stats.norm.ppf([(i + 0.5) / n for i in range(n)])]
    values = [v - (sum(values) / n - t / math.sqrt(n) * stats.tstd(values)) for v in values]
    return judge("part", HIGHER, 0.0, one_sample(values))


def test_p_against_is_the_one_sided_p_of_failing_and_matches_the_interval():
    part = failing(0.01)
    assert part.outcome == DOES_NOT_HOLD and part.p_against() == pytest.approx(0.01, rel=1e-6)
    assert failing(0.03).outcome == INCONCLUSIVE  # above 0.025: the 95% interval reaches 0
    assert condition("no run diverged", False, "1 of 5").p_against() is None  # not a test


def test_a_conjunction_is_rejected_only_by_a_part_that_survives_holm():
    weak, strong = failing(0.02), failing(0.001)
    assert weak.outcome == DOES_NOT_HOLD  # alone, at 5% (2.5% a side)
    holds = judge("other", HIGHER, 0.0, one_sample([1.0, 1.1, 0.9, 1.05]))
    # two tested parts: the smaller p is compared with 0.025 / 2, the next with 0.025
    combined = all_of("claim", [holds, weak])
    assert combined.outcome == INCONCLUSIVE
    demoted = combined.parts[1]
    assert demoted.outcome == INCONCLUSIVE and "not after Holm's correction over 2 parts" in demoted.text
    assert demoted.points_against and demoted.seeds_needed is None
    assert all_of("claim", [holds, strong]).outcome == DOES_NOT_HOLD  # 0.001 < 0.0125
    # step-down: once the smallest is rejected, the next is compared with a larger threshold
    assert [p.outcome for p in holm([failing(0.001), failing(0.02)])] == [DOES_NOT_HOLD, DOES_NOT_HOLD]
    assert [p.outcome for p in holm([failing(0.02), failing(0.02), holds])] == [INCONCLUSIVE, INCONCLUSIVE, HOLDS]
    # a failing condition is no test: it rejects as it is
    assert all_of("claim", [holds, weak, condition("trains", False, "1 of 5 diverged")]).outcome == DOES_NOT_HOLD


def test_a_failing_alternative_counts_with_its_largest_p():
    either = any_of("diverges or ends lower", [condition("diverges", False, "0 of 5"), failing(0.001)])
    assert either.outcome == DOES_NOT_HOLD and either.p_against() == pytest.approx(0.001, rel=1e-6)
    assert holm([either, failing(0.02)])[0].outcome == DOES_NOT_HOLD


def test_margins_move_the_boundary_of_higher_and_lower():
    values = [0.05, 0.06, 0.055, 0.052, 0.058]
    assert judge("x", HIGHER, 0.0, one_sample(values)).outcome == HOLDS
    assert judge("x", HIGHER, 0.04, one_sample(values)).outcome == HOLDS
    assert judge("x", HIGHER, 0.07, one_sample(values)).outcome == DOES_NOT_HOLD
    assert judge("x", LOWER, -0.07, one_sample(values)).outcome == HOLDS  # below +0.07... as LOWER's margin
    result = judge("x", HIGHER, 0.055, one_sample(values))
    assert result.outcome == INCONCLUSIVE and result.boundary == 0.055


def test_an_open_comparison_says_which_way_it_points_and_gives_seeds_only_the_claims_way():
    toward = judge("BN ends higher", HIGHER, 0.0, one_sample([0.01, -0.005, 0.02, 0.004]))
    assert toward.outcome == INCONCLUSIVE and not toward.points_against and toward.seeds_needed
    assert f"it points the claim's way: about {toward.seeds_needed} seeds per arm would settle it" in toward.line()
    against = judge("BN lowers beta", LOWER, 0.0, one_sample([0.01, -0.005, 0.02, 0.004]))
    assert against.outcome == INCONCLUSIVE and against.points_against and against.seeds_needed is None
    assert "points against the claim" in against.line() and "seeds" not in against.line()
    outside = judge("tie", EQUAL, 0.001, one_sample([0.01, -0.005, 0.02, 0.004]))
    assert outside.outcome == INCONCLUSIVE and outside.points_against and outside.seeds_needed is None


def test_against_a_margin_the_p_shown_is_the_margins_test():
    values = [0.05, 0.06, 0.055, 0.052, 0.058]
    margin_p = stats.ttest_1samp(values, 0.04).pvalue  # the test the rule decides: is the mean above 0.04?
    against_margin = judge("x", HIGHER, 0.04, one_sample(values))
    assert f", p {margin_p:.3f} against +0.040 (n=5)" in against_margin.text
    assert ", p < 0.001 (n=5)" in judge("x", HIGHER, 0.0, one_sample(values)).text  # against 0: no margin named

    logs = [math.log(v) for v in (0.86, 0.78, 0.84, 0.8, 0.83)]  # ratios, decided against "below 0.8"
    ratio = judge("r", LOWER, -math.log(0.8), one_sample(logs), shown=ratio_of_logs)
    assert ratio.outcome == INCONCLUSIVE
    assert f"p {stats.ttest_1samp(logs, math.log(0.8)).pvalue:.3f} against 0.8 (n=5)" in ratio.text


def test_recorded_values_against_limits():
    assert within("identities", 3e-15, 1e-9).outcome == HOLDS
    assert within("identities", 3e-8, 1e-9).outcome == DOES_NOT_HOLD
    assert at_least("degrades", 0.5, 0.02).outcome == HOLDS and at_least("degrades", 0.01, 0.02).outcome == DOES_NOT_HOLD
    assert within("x", None, 1.0).outcome == INCONCLUSIVE and "no value recorded" in within("x", None, 1.0).text
    assert "3.0e-15, at most 1e-09" in within("identities", 3e-15, 1e-9, "largest error").text
