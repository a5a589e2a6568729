"""Each claim's verdict rule on hand-written run folders that should hold and that should not."""

from __future__ import annotations

import math

import pytest
from runfactory import (
    SEEDS,
    batch_size_runs,
    bn_math_result,
    bn_only_runs,
    dropout_runs,
    fig1_runs,
    ics_runs,
    insert_result,
    landscape_runs,
    lr_runs,
    noisy_runs,
    placement_runs,
    poor_init_runs,
    saturation_runs,
    scale_runs,
    step_curve,
    time_stats_result,
    write_catalogue,
    write_run,
)

from analysis.arms import arm_matches
from analysis.claims import CLAIMS, CLAIMS_BY_ID
from analysis.rules import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from analysis.tables import load_all
from analysis.verdict import deciding_parts


def verdict_of(claim, root):
    """The claim's verdict on the runs written flat under `root`: each run goes to one arm of the claim, the
    one of its own experiment among those its settings match, else the first of them."""
    claim = CLAIMS_BY_ID[claim]
    arms = {arm.name: [] for arm in claim.arms}
    for run in load_all(root):
        matching = [arm for arm in claim.arms if arm_matches(run, arm)]
        own = [arm for arm in matching if arm.experiment == run.summary.get("experiment")]
        if matching:
            arms[(own or matching)[0].name].append(run)
    return claim.verdict(arms)


# --- C1, C2 -------------------------------------------------------------------------------------


def test_c1_holds_when_bn_is_above_throughout_with_intervals_apart(tmp_path):
    fig1_runs(tmp_path)
    v = verdict_of("C1", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    assert v.seeds == 3 and v.dataset == "digits" and v.steps == 1000
    faster, higher = deciding_parts(v.decision)[1:]
    assert faster.outcome == HOLDS and higher.outcome == HOLDS
    # at step 1000 the BN curve is at 0.97, the no-BN curve 0.1 + 0.8 (1 - e^-4) (+0.002 * seed in both)
    assert higher.difference.mean == pytest.approx(0.97 - (0.1 + 0.8 * (1 - math.exp(-4))), abs=1e-6)
    # each BN run passes its seed's no-BN final accuracy long before the baseline does (at step 1000)
    steps = v.numbers["steps to the same seed's no-BN final acc, BN / no-BN, per seed"]
    assert all(int(pair.split(" / ")[0]) < 500 and pair.split(" / ")[1] == "1000" for pair in steps.values())
    assert v.numbers["BN above no-BN (mean curves), evaluations after the first 10%"] == "9 of 9"


def test_c1_does_not_hold_when_bn_ends_lower(tmp_path):
    fig1_runs(tmp_path, bn_final=0.85)
    assert verdict_of("C1", tmp_path).verdict == DOES_NOT_HOLD


def test_c1_with_one_seed_is_inconclusive(tmp_path):
    fig1_runs(tmp_path, seeds=(0,))
    v = verdict_of("C1", tmp_path)
    assert v.verdict == INCONCLUSIVE and "too few" in v.explanation


def test_c1_a_diverged_bn_run_means_it_does_not_hold(tmp_path):
    fig1_runs(tmp_path)
    write_run(tmp_path / "before_1.0_3", seed=3, bn="before", lr_mult=1.0, diverged_at=300)
    v = verdict_of("C1", tmp_path)
    assert v.verdict == DOES_NOT_HOLD and "diverged" in v.explanation


def test_c2_holds_when_percentiles_drift_less_with_bn(tmp_path):
    fig1_runs(tmp_path, drift_bn=0.1, drift_base=2.0)
    v = verdict_of("C2", tmp_path)
    assert v.verdict == HOLDS
    # each percentile moves drift * 0.9 (steps 100..1000) over a spread of 2
    assert v.numbers["BN drift"].mean == pytest.approx(0.1 * 0.9 / 2)
    assert v.numbers["no-BN drift"].mean == pytest.approx(2.0 * 0.9 / 2)


def test_c2_does_not_hold_when_bn_drifts_more(tmp_path):
    fig1_runs(tmp_path, drift_bn=2.0, drift_base=0.1)
    assert verdict_of("C2", tmp_path).verdict == DOES_NOT_HOLD


def test_c2_without_probes_is_inconclusive(tmp_path):
    for seed in SEEDS:
        for placement in ("before", "none"):
            write_run(tmp_path / f"{placement}{seed}", seed=seed, bn=placement)
    assert verdict_of("C2", tmp_path).verdict == INCONCLUSIVE


# --- C3 -------------------------------------------------------------------------------------------


def test_c3_holds_on_bn_at_its_best_multiplier_against_no_bn_at_its_best(tmp_path):
    lr_runs(tmp_path)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    assert v.numbers["best multiplier (BN, no-BN)"] == "x5, x5"  # BN 0.951 > 0.941 (x1); no BN 0.911 > 0.901 (x1)
    # every seed's no-BN x5 run reaches its own final accuracy at step 500, BN x5 at 100
    faster = deciding_parts(v.decision)[0]
    assert "(BN x5 / no-BN x5)" in faster.label
    assert faster.outcome == HOLDS and math.exp(faster.difference.mean) == pytest.approx(0.2)
    steps = v.numbers["steps to the same seed's no-BN x5 final acc, BN x5 / no-BN x5, per seed"]
    assert set(steps.values()) == {"100 / 500"}
    # the paper's framing, secondary: BN x5 (100) and BN x30 (200) against no-BN x1 (1000)
    x5, x30 = v.secondary
    assert x5.outcome == HOLDS and math.exp(x5.difference.mean) == pytest.approx(0.1)
    assert x30.outcome == HOLDS and math.exp(x30.difference.mean) == pytest.approx(0.2)
    steps = v.numbers["steps to the same seed's no-BN x1 final acc, BN x5 / no-BN x1, per seed"]
    assert set(steps.values()) == {"100 / 1000"}
    assert v.numbers["no-BN x30 diverged"] == "3/3"


@pytest.mark.parametrize(
    "kwargs, best, ratio, expected",
    [
        # no BN does worse at x5 (0.85): its best is x1, reached at step 1000
        ({"base_x5": (0.85, 500)}, "x5, x1", 0.1, HOLDS),
        # BN does better at x1 (0.96, at step 400): its best is x1, against no BN x5 at 500
        ({"bn_x1_final": 0.96}, "x1, x5", 0.8, HOLDS),
        # no BN x5 ends at 0.96 by step 100, above every BN run: BN never gets there (censored at 1100)
        ({"base_x5": (0.96, 100)}, "x5, x5", 11.0, DOES_NOT_HOLD),
    ],
)
def test_c3_decides_on_each_arms_best_multiplier_not_on_x5_against_x1(tmp_path, kwargs, best, ratio, expected):
    lr_runs(tmp_path, **kwargs)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == expected, v.explanation
    assert v.numbers["best multiplier (BN, no-BN)"] == best
    faster = deciding_parts(v.decision)[0]
    bn_mult, base_mult = best.split(", ")
    assert f"(BN {bn_mult} / no-BN {base_mult})" in faster.label
    assert faster.outcome == expected and math.exp(faster.difference.mean) == pytest.approx(ratio)
    # the paper's framing, BN x5 against no BN x1, holds throughout: it decides nothing
    assert v.secondary[0].outcome == HOLDS and math.exp(v.secondary[0].difference.mean) == pytest.approx(0.1)


def test_c3_does_not_hold_when_bn_x30_diverges(tmp_path):
    lr_runs(tmp_path, bn_x30_diverges=True)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == DOES_NOT_HOLD and "BN x30 trains: does not hold (3 of 3 runs diverged)" in v.explanation
    assert v.numbers["best multiplier (BN, no-BN)"] == "x5, x5"  # a multiplier with a diverged run is no candidate


def test_c3_does_not_hold_when_no_bn_x30_trains_fine(tmp_path):
    # no-BN x30 ends at 0.93, 0.94, 0.95 against x1's 0.900, 0.901, 0.902 (one-sided p 0.010, below 0.025 / 2)
    lr_runs(tmp_path, base_x30_final=0.93)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == DOES_NOT_HOLD, v.explanation
    assert "no BN x30 ends lower than no BN x1 (final test accuracy, x30 - x1): does not hold" in v.explanation
    worse = deciding_parts(v.decision)[-1]
    assert worse.difference.mean == pytest.approx(0.039)
    # no BN's best is now x30 (0.94), which BN x5 passes at step 100 where no BN x30 gets there at 300
    assert v.numbers["best multiplier (BN, no-BN)"] == "x5, x30"
    assert math.exp(deciding_parts(v.decision)[0].difference.mean) == pytest.approx(1 / 3)


def test_c3_a_failing_part_that_holms_correction_does_not_reject_leaves_it_open(tmp_path):
    # no-BN x30 ends higher than x1 by 0.029 (one-sided p 0.018): below 0.025 alone, not below 0.025 / 2
    lr_runs(tmp_path, base_x30_final=0.92)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == INCONCLUSIVE, v.explanation
    assert "not after Holm's correction over 2 parts" in v.explanation
    assert "the observed difference points against the claim" in v.explanation and v.seeds_needed is None


def test_c3_is_inconclusive_when_no_bn_x30_ends_lower_within_the_noise(tmp_path):
    lr_runs(tmp_path, base_x30_final=0.885)  # 0.885, 0.895, 0.905 against 0.900, 0.901, 0.902
    v = verdict_of("C3", tmp_path)
    assert v.verdict == INCONCLUSIVE and "no BN x30 ends lower than no BN x1 (final test accuracy, x30 - x1): inconclusive" in v.explanation
    assert deciding_parts(v.decision)[-1].difference.mean == pytest.approx(-0.006)
    assert v.seeds_needed is not None and v.seeds_needed > 3 and "points the claim's way" in v.explanation


# --- C4 -------------------------------------------------------------------------------------------


def c4_parts(v):
    """C4's two verdicts: (a) BN everywhere rescues a bad initialization, (b) BN on the last layer alone."""
    assert [label for label, _ in v.parts] == ["BN everywhere rescues a bad initialization",
                                               "BN on the last layer alone rescues it"]
    return v.parts[0][1], v.parts[1][1]


def test_c4_holds_when_no_bn_outputs_nothing_and_bn_on_the_logits_trains_given_4x_the_steps(tmp_path):
    poor_init_runs(tmp_path)
    v = verdict_of("C4", tmp_path)
    assert v.verdict == "(a) holds; (b) holds", v.explanation
    a, b = c4_parts(v)
    loss, entropy, shrinks, trains, above = deciding_parts(a.decision)
    # no BN's final test loss is ln 10 + 0.001 x seed, its last prediction entropy ln 10 - 0.001 x seed
    assert loss.outcome == HOLDS and loss.difference.mean == pytest.approx(0.001)
    assert entropy.outcome == HOLDS and entropy.difference.mean == pytest.approx(-0.001)
    assert shrinks.outcome == HOLDS and trains.outcome == HOLDS
    assert above.outcome == HOLDS and above.difference.mean == pytest.approx(0.701)  # 0.8 + 0.001 x seed - 0.1
    assert v.numbers["no-BN scale shrink (orders of magnitude, first to last)"] == pytest.approx(10.0)
    assert v.numbers["no BN final test loss (ln 10 = 2.303)"].mean == pytest.approx(math.log(10) + 0.001)
    assert v.numbers["no BN share of the most predicted class"].mean == pytest.approx(1.0)
    # (b) is decided on the poor_init_long runs: 0.6 + 0.01 x seed after 4000 steps
    assert [leaf.label.split(" trains")[0] for leaf in deciding_parts(b.decision)] == ["BN last only, 4x steps"] * 2
    assert deciding_parts(b.decision)[1].difference.mean == pytest.approx(0.51)
    assert v.numbers["BN last only, 4x steps final acc"].mean == pytest.approx(0.61)


def test_c4_a_decides_on_the_outputs_not_on_accuracy_near_chance(tmp_path):
    # a constant, confident prediction: accuracy at chance (0.1), but a low entropy and a high test loss
    poor_init_runs(tmp_path / "confident", base_final=0.1, base_entropy=1.0, base_loss=3.5)
    # no BN trains: accuracy 0.5, loss and entropy far below ln 10
    poor_init_runs(tmp_path / "trains", base_final=0.5, base_entropy=1.2, base_loss=1.4)
    for case, loss_diff in (("confident", 3.5 + 0.001 - math.log(10)), ("trains", 1.4 + 0.001 - math.log(10))):
        v = verdict_of("C4", tmp_path / case)
        assert v.verdict == "(a) does not hold; (b) holds", v.explanation
        loss, entropy = deciding_parts(c4_parts(v)[0].decision)[:2]
        assert loss.outcome == DOES_NOT_HOLD and loss.difference.mean == pytest.approx(loss_diff)
        assert entropy.outcome == DOES_NOT_HOLD
        assert "no BN's predictions are uniform" in c4_parts(v)[0].explanation


def test_c4_a_is_inconclusive_when_the_test_loss_is_near_the_margin(tmp_path):
    # test losses ln 10 + 0.04, + 0.06, + 0.08 (mean 0.06 above: outside +-0.05, but not shown to be)
    poor_init_runs(tmp_path, base_loss=math.log(10) + 0.04, base_spread=0.02)
    v = verdict_of("C4", tmp_path)
    assert v.verdict == "(a) inconclusive; (b) holds", v.explanation
    loss = deciding_parts(c4_parts(v)[0].decision)[0]
    assert loss.outcome == INCONCLUSIVE and loss.difference.mean == pytest.approx(0.06)
    assert "points against the claim" in loss.line()


def test_c4_does_not_hold_when_the_scale_barely_shrinks(tmp_path):
    poor_init_runs(tmp_path, shrink=1.2)
    v = verdict_of("C4", tmp_path)
    a, _ = c4_parts(v)
    assert a.verdict == DOES_NOT_HOLD and v.failed
    assert "the no-BN scale at init shrinks layer by layer, by at least 2 orders: does not hold" in a.explanation


@pytest.mark.parametrize(
    "last_final, long_final, expected",
    [
        (0.1, 0.6, HOLDS),  # at chance after 600 steps, trains given 4x the steps
        (0.6, 0.1, DOES_NOT_HOLD),  # trains after 600 steps, yet not after 4x: (b) reads the 4x arm
        (0.1, 0.2, INCONCLUSIVE),  # 0.20, 0.21, 0.22: above chance, not shown to be 0.10 above it
    ],
)
def test_c4_b_is_decided_on_bn_on_the_logits_for_4x_the_steps(tmp_path, last_final, long_final, expected):
    poor_init_runs(tmp_path, last_final=last_final, long_final=long_final)
    v = verdict_of("C4", tmp_path)
    a, b = c4_parts(v)
    assert a.verdict == HOLDS and b.verdict == expected, b.explanation
    assert v.verdict == f"(a) holds; (b) {expected}"
    above = deciding_parts(b.decision)[1]
    assert above.label.startswith("BN last only, 4x steps trains well above chance")
    assert above.difference.mean == pytest.approx(long_final + 0.01 - 0.1)
    # the protocol's 600 steps are secondary: above chance there, and whether that arm trains at all
    short_above, short_does_not_train = b.secondary[:2]
    assert short_above.label.startswith("BN last only at the protocol's steps trains well above chance")
    assert short_above.outcome == (HOLDS if last_final == 0.6 else DOES_NOT_HOLD)
    assert short_does_not_train.outcome == (HOLDS if last_final == 0.1 else DOES_NOT_HOLD)


def test_c4_b_without_the_4x_runs_is_inconclusive(tmp_path):
    poor_init_runs(tmp_path, long_final=None)
    v = verdict_of("C4", tmp_path)
    assert v.verdict == "(a) holds; (b) inconclusive" and v.open
    assert "no finished runs of BN on the logits only for 4x the steps (poor_init_long)" in v.explanation


def test_c4_explains_a_last_layer_at_chance_by_eps_and_tests_it_with_a_tiny_eps(tmp_path):
    # the logits' scale at init, 0.5 / 100^5 = 5e-11, squared is far below eps = 1e-5
    poor_init_runs(tmp_path, last_final=0.1, long_final=0.1, tiny_eps_final=0.6)
    v = verdict_of("C4", tmp_path)
    assert v.verdict == "(a) holds; (b) does not hold"
    _, b = c4_parts(v)
    lifted, above = b.secondary[2:]
    assert lifted.outcome == HOLDS and lifted.difference.paired
    assert lifted.difference.mean == pytest.approx(0.5 + 0.009, abs=1e-9)  # 0.6 + 0.01 seed vs 0.1 + 0.001 seed
    assert above.outcome == HOLDS
    assert "5.0e-11, squared is far below BN's eps = 1e-05" in v.explanation and "a tiny eps supports it" in v.explanation


def test_c4_says_when_a_tiny_eps_does_not_lift_the_last_layer(tmp_path):
    poor_init_runs(tmp_path, last_final=0.1, long_final=0.1, tiny_eps_final=0.1)
    v = verdict_of("C4", tmp_path)
    _, b = c4_parts(v)
    assert b.verdict == DOES_NOT_HOLD
    assert b.secondary[2].outcome != HOLDS and "a tiny eps supports it" not in v.explanation
    assert "squared is far below BN's eps" in b.note


# --- C5, C8 ---------------------------------------------------------------------------------------


def test_c5_holds_when_identities_hold_and_only_bn_ignores_the_scale(tmp_path):
    scale_runs(tmp_path)
    v = verdict_of("C5", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    assert v.numbers["BN final acc range over scales"] == pytest.approx(0.01)
    assert v.numbers["no-BN final acc range over scales"] == pytest.approx(0.8)


def test_c5_does_not_hold_when_an_identity_is_off(tmp_path):
    scale_runs(tmp_path, exact_grad_weight_error=1e-6)  # far above float64 round-off
    v = verdict_of("C5", tmp_path)
    assert v.verdict == DOES_NOT_HOLD and "grad_weight" in v.explanation


def test_c5_does_not_hold_when_bn_depends_on_the_scale(tmp_path):
    scale_runs(tmp_path, bn_spread=0.3)
    assert verdict_of("C5", tmp_path).verdict == DOES_NOT_HOLD


def test_c8_holds_when_the_bias_does_nothing(tmp_path):
    scale_runs(tmp_path)
    v = verdict_of("C8", tmp_path)
    assert v.verdict == HOLDS and v.numbers["runs"] == 9


def test_c8_does_not_hold_when_the_bias_matters_or_remains(tmp_path):
    scale_runs(tmp_path / "a", bias_effect=0.3)
    scale_runs(tmp_path / "b", layers_with_bias=1)
    assert verdict_of("C8", tmp_path / "a").verdict == DOES_NOT_HOLD
    assert verdict_of("C8", tmp_path / "b").verdict == DOES_NOT_HOLD


# --- C6, C9, C10, C13 -----------------------------------------------------------------------------


def test_c6_holds_when_bns_input_is_more_gaussian_before_the_nonlinearity(tmp_path):
    placement_runs(tmp_path)
    v = verdict_of("C6", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    parts = {leaf.label.split(" (")[0]: leaf for leaf in deciding_parts(v.decision)}
    assert set(parts) == {f"{act}: BN's input is {word} before the nonlinearity" for act in ("sigmoid", "relu")
                          for word in ("more symmetric", "less heavy-tailed")}
    # |skew| and |excess kurtosis| at the last evaluation at lr_mult 1, fc2's negative skew counted by its size;
    # earlier evaluations and lr_mult 0.2 and 5 show the other placement's shape, and count for nothing
    kurt, skew = (parts[f"{act}: BN's input is {word} before the nonlinearity"]
                  for act, word in (("relu", "less heavy-tailed"), ("sigmoid", "more symmetric")))
    assert kurt.difference.mean == pytest.approx(0.5 - 6.0) and skew.difference.mean == pytest.approx(0.1 - 0.8)
    assert v.numbers["sigmoid before BN-input |excess kurtosis|"].mean == pytest.approx(0.51)  # + 0.01 x seed
    assert v.numbers["relu after BN-input |skew|"].mean == pytest.approx(2.01)


@pytest.mark.parametrize(
    "relu_before, expected",
    [((0.1, 8.0), DOES_NOT_HOLD), ((0.1, 5.99), INCONCLUSIVE)],  # after ReLU: |skew| 2.0, |excess kurtosis| 6.0
)
def test_c6_fails_or_stays_open_when_before_is_as_heavy_tailed_in_one_activation(tmp_path, relu_before, expected):
    placement_runs(tmp_path, shapes={("relu", "before"): relu_before})
    v = verdict_of("C6", tmp_path)
    assert v.verdict == expected, v.explanation
    kurt = next(leaf for leaf in deciding_parts(v.decision) if leaf.label.startswith("relu: BN's input is less heavy"))
    assert kurt.outcome == expected and kurt.difference.mean == pytest.approx(relu_before[1] - 6.0)
    others = [leaf for leaf in deciding_parts(v.decision) if leaf is not kurt]
    assert all(leaf.outcome == HOLDS for leaf in others)
    if expected == INCONCLUSIVE:
        assert v.seeds_needed is not None and v.seeds_needed > 3


@pytest.mark.parametrize("before, after, secondary", [(0.95, 0.90, HOLDS), (0.90, 0.95, DOES_NOT_HOLD)])
def test_c6_accuracy_at_each_placements_best_lr_is_reported_not_decided(tmp_path, before, after, secondary):
    placement_runs(tmp_path, before, after)
    v = verdict_of("C6", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    assert [r.outcome for r in v.secondary] == [secondary, secondary]  # relu, sigmoid
    assert v.secondary[0].difference.mean == pytest.approx(before - after)


def test_c6_takes_each_placement_at_its_best_lr_for_the_accuracy(tmp_path):
    placement_runs(tmp_path, after={0.2: 0.80, 1: 0.90, 5: 0.97})  # BN after does best at x5
    v = verdict_of("C6", tmp_path)
    assert v.verdict == HOLDS
    relu = v.secondary[0]
    assert "(before x1 - after x5)" in relu.label and relu.outcome == DOES_NOT_HOLD
    assert relu.difference.mean == pytest.approx(0.95 - 0.97)
    assert v.numbers["sigmoid after final acc (lr x5)"].mean == pytest.approx(0.971)


def test_c9_holds_when_dropout_helps_bn_less(tmp_path):
    dropout_runs(tmp_path)
    v = verdict_of("C9", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    # gains per seed: 0.05, 0.051, 0.05 -> mean 0.050333
    assert v.numbers["no-BN dropout gain"].mean == pytest.approx(0.050333, abs=1e-6)
    assert v.numbers["BN train-test gap, dropout 0"].mean == pytest.approx(0.02)


def test_c9_does_not_hold_when_dropout_helps_bn_more(tmp_path):
    dropout_runs(tmp_path, bn_gain=0.06)
    assert verdict_of("C9", tmp_path).verdict == DOES_NOT_HOLD


def test_c9_cannot_be_tested_where_dropout_is_not_shown_to_help_the_baseline(tmp_path):
    dropout_runs(tmp_path, base_gain=-0.01, bn_gain=-0.02)  # no-BN gains per seed: -0.01, -0.009, -0.01
    v = verdict_of("C9", tmp_path)
    assert v.verdict == INCONCLUSIVE
    assert "Dropout is not shown to help the unnormalized net in this regime (its gain -0.010 [" in v.explanation


def test_c10_holds_with_less_saturation_and_balanced_gradients(tmp_path):
    saturation_runs(tmp_path)
    v = verdict_of("C10", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    assert v.numbers["no-BN |log10 grad first/last|"].mean == pytest.approx(2.0)


def test_c10_does_not_hold_when_bn_saturates_more(tmp_path):
    saturation_runs(tmp_path, bn_sat=0.7)
    assert verdict_of("C10", tmp_path).verdict == DOES_NOT_HOLD


@pytest.mark.parametrize("base_final, expected", [(0.1, HOLDS), (0.5, HOLDS), (0.88, DOES_NOT_HOLD)])
def test_c13_deep_sigmoid(tmp_path, base_final, expected):
    for seed in SEEDS:
        write_run(tmp_path / f"bn{seed}", seed=seed, bn="before", acc=step_curve(0.1, 0.9, 100, 0.001 * seed))
        write_run(tmp_path / f"none{seed}", seed=seed, bn="none", acc=step_curve(0.1, base_final, 100, 0.001 * seed))
    assert verdict_of("C13", tmp_path).verdict == expected


# --- C7, C11, C12 ---------------------------------------------------------------------------------


def test_c7_holds_and_not(tmp_path):
    for seed in SEEDS:
        write_run(tmp_path / "a" / str(seed), seed=seed, probes={"test_time_stats": time_stats_result()})
        write_run(
            tmp_path / "b" / str(seed), seed=seed, probes={"test_time_stats": time_stats_result(batch_small=0.93)}
        )
    v = verdict_of("C7", tmp_path / "a")
    assert v.verdict == HOLDS, v.explanation
    assert v.numbers["accuracy lost with batch statistics at the smallest batch"].mean == pytest.approx(0.435)
    assert verdict_of("C7", tmp_path / "b").verdict == DOES_NOT_HOLD


@pytest.mark.parametrize(
    "difference, finetuned, expected", [(4e-6, 0.97, HOLDS), (0.1, 0.97, DOES_NOT_HOLD), (4e-6, 0.90, DOES_NOT_HOLD)]
)
def test_c11(tmp_path, difference, finetuned, expected):
    write_run(tmp_path / "0", bn="none", probes={"insert_pretrained": insert_result(difference, finetuned)})
    assert verdict_of("C11", tmp_path).verdict == expected


@pytest.mark.parametrize(
    "error, gradcheck, expected", [(1e-7, True, HOLDS), (1e-3, True, DOES_NOT_HOLD), (1e-7, False, DOES_NOT_HOLD)]
)
def test_c12(tmp_path, error, gradcheck, expected):
    write_run(tmp_path / "0", probes={"bn_math": bn_math_result(error, gradcheck)})
    assert verdict_of("C12", tmp_path).verdict == expected


def test_every_claim_without_runs_is_inconclusive(tmp_path):
    for claim in CLAIMS:
        v = claim.verdict({arm.name: [] for arm in claim.arms})
        assert v.verdict == INCONCLUSIVE and v.claim == claim.id


@pytest.mark.parametrize("base_x5, expected", [(0.1, HOLDS), (0.89, DOES_NOT_HOLD)])
def test_c13_takes_each_arm_at_its_tuned_lr(tmp_path, base_x5, expected):
    for seed in SEEDS:
        for mult, bn_final, base_final in ((1, 0.9, 0.1), (5, 0.95, base_x5)):
            j = 0.001 * seed
            write_run(
                tmp_path / f"bn{mult}_{seed}",
                seed=seed,
                bn="before",
                lr_mult=mult,
                acc=step_curve(0.1, bn_final, 100, j),
            )
            write_run(
                tmp_path / f"no{mult}_{seed}",
                seed=seed,
                bn="none",
                lr_mult=mult,
                acc=step_curve(0.1, base_final, 100, j),
            )
    v = verdict_of("C13", tmp_path)
    assert v.verdict == expected and v.numbers["BN final acc"].mean == pytest.approx(0.951)
    assert v.numbers["tuned lr_mult (BN, no-BN)"] == ("x5, x1" if base_x5 == 0.1 else "x5, x5")


def test_c10_a_tie_is_inconclusive(tmp_path):
    saturation_runs(tmp_path, bn_sat=0.0, base_sat=0.0)
    v = verdict_of("C10", tmp_path)
    assert v.verdict == INCONCLUSIVE and "BN saturates less (saturated fraction, BN - no BN): inconclusive" in v.explanation


@pytest.mark.parametrize("bn_gain, points_our_way", [(0.0505, False), (0.0501, True)])
def test_c9_overlapping_gains_are_inconclusive(tmp_path, bn_gain, points_our_way):
    # no-BN gains per seed: 0.05, 0.051, 0.05
    dropout_runs(tmp_path, bn_gain=bn_gain)
    v = verdict_of("C9", tmp_path)
    assert v.verdict == INCONCLUSIVE, v.explanation
    less = deciding_parts(v.decision)[0]
    assert less.difference.mean == pytest.approx(bn_gain - 0.050333, abs=1e-6)
    if points_our_way:  # BN's gain is smaller on average: more seeds could settle it
        assert v.seeds_needed is not None and v.seeds_needed > 3
        assert "it points the claim's way" in v.explanation
    else:  # BN's gain is larger on average: no number of seeds is offered
        assert v.seeds_needed is None
        assert "the observed difference points against the claim" in v.explanation


# --- C14-C18: later work --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "noisy_final, base_final, noisy_spread, expected",
    [
        (0.95, 0.85, 0.0, HOLDS),  # keeps 0.10 of a 0.11 lead
        (0.90, 0.85, 0.0, DOES_NOT_HOLD),  # beats no BN, but keeps 0.05 of a 0.11 lead: less than half
        (0.95, 0.97, 0.0, DOES_NOT_HOLD),  # no BN ends above noisy BN
        (0.91, 0.85, 0.01, INCONCLUSIVE),  # keeps 0.06 of 0.11 on average, seeds 0.01 apart
    ],
)
def test_c14_noisy_bn_keeps_more_than_half_of_bns_lead(tmp_path, noisy_final, base_final, noisy_spread, expected):
    noisy_runs(tmp_path, noisy_final=noisy_final, base_final=base_final, noisy_spread=noisy_spread)
    v = verdict_of("C14", tmp_path)
    assert v.verdict == expected, v.explanation
    assert v.seeds == 3
    trains, kept, beats = deciding_parts(v.decision)
    assert trains.outcome == HOLDS and kept.outcome == expected
    # per seed (noisy - no BN) - 0.5 x (BN - no BN); BN ends at 0.96 (all arms + 0.002 x seed)
    assert kept.difference.mean == pytest.approx((noisy_final - base_final) - 0.5 * (0.96 - base_final))
    assert beats.outcome == (DOES_NOT_HOLD if base_final > noisy_final else HOLDS)
    assert v.numbers["BN's lead over no BN"].mean == pytest.approx(0.96 - base_final)
    if expected == INCONCLUSIVE:
        assert v.seeds_needed is not None and "it points the claim's way" in v.explanation
    # the noise moves the tracked unit's percentiles by 0.5 against a 15-85 width of 2; BN's stay put
    assert v.numbers["BN drift"].mean == pytest.approx(0.0)
    assert v.numbers["noisy BN drift"].mean == pytest.approx(0.25)


@pytest.mark.parametrize(
    "bn_l2, bn_cos, expected",
    [(2.0, 0.5, HOLDS), (1.0, 0.9, HOLDS), (0.5, 0.95, DOES_NOT_HOLD), (0.5, 0.5, DOES_NOT_HOLD), (0.9, 0.9, INCONCLUSIVE)],
)
def test_c15_holds_unless_bn_reduces_the_shift(tmp_path, bn_l2, bn_cos, expected):
    ics_runs(tmp_path, bn_l2=bn_l2, bn_cos=bn_cos)
    v = verdict_of("C15", tmp_path)
    assert v.verdict == expected, v.explanation
    assert v.numbers["no-BN ICS l2"].mean == pytest.approx(1.01)  # 1 + mean seed offset, step 0 left out


def geometric_mean_ratio(scale, spread):
    """landscape_runs' BN / no-BN ratio, averaged on the log scale: seed s has (scale + spread s) / (1 + spread s)."""
    return math.exp(sum(math.log((scale + spread * s) / (1 + spread * s)) for s in SEEDS) / len(SEEDS))


@pytest.mark.parametrize(
    "bn_scale, spread, expected",
    [
        (0.1, 0.01, HOLDS),
        (0.9, 0.01, DOES_NOT_HOLD),  # lower, but by 10%: not markedly
        (3.0, 0.01, DOES_NOT_HOLD),
        (0.75, 0.1, INCONCLUSIVE),  # 0.77 on average, seeds far apart
    ],
)
def test_c16_all_three_landscape_measures_lower_with_bn(tmp_path, bn_scale, spread, expected):
    landscape_runs(tmp_path, bn_scale=bn_scale, spread=spread)
    v = verdict_of("C16", tmp_path)
    assert v.verdict == expected, v.explanation
    parts = deciding_parts(v.decision)
    assert [p.label.split(" (")[0] for p in parts] == [
        "BN markedly lowers the loss range", "BN markedly lowers the gradient change", "BN markedly lowers beta"]
    # BN / no BN per seed: (bn_scale + spread x seed) / (1 + spread x seed); decided against 0.8
    ratio = geometric_mean_ratio(bn_scale, spread)
    for part in parts:
        assert part.outcome == expected and part.log_scale
        assert math.exp(part.difference.mean) == pytest.approx(ratio)
        assert part.boundary == pytest.approx(math.log(0.8))
    assert v.numbers["no-BN beta"].mean == pytest.approx(10.0 * (1 + spread))
    if expected == INCONCLUSIVE:
        assert v.seeds_needed is not None


def test_c16_the_gradient_norm_is_reported_not_decided(tmp_path):
    landscape_runs(tmp_path, bn_grad=1.2)  # BN's gradient 1.2 times the baseline's, its landscape 0.1 times
    v = verdict_of("C16", tmp_path)
    assert v.verdict == HOLDS
    (grad,) = v.secondary
    assert grad.outcome == DOES_NOT_HOLD and grad.label.startswith("BN's gradient is smaller")
    assert math.exp(grad.difference.mean) == pytest.approx(geometric_mean_ratio(1.2, 0.01))
    assert v.numbers["no-BN gradient norm"].mean == pytest.approx(3.03)


@pytest.mark.parametrize(
    "kwargs, reference, change, expected",
    [
        ({"bn_small": 0.70}, 32, -0.20, HOLDS),  # BN level with GroupNorm at 32, 0.20 behind at 2
        ({"bn_small": 0.95}, 32, +0.05, DOES_NOT_HOLD),  # BN leads GroupNorm more at batch 2
        ({"group_at": {2: 0.60}}, 32, +0.10, DOES_NOT_HOLD),  # both drop at batch 2, GroupNorm more
        ({"bn_small": 0.895, "bn_small_spread": 0.02}, 32, -0.005, INCONCLUSIVE),
        # BN 0.30 behind at 256: against batch 32 its lead shrinks at batch 2, against 256 it would grow
        ({"bn_at": {256: 0.60}}, 32, -0.20, HOLDS),
        ({"bn_at": {256: 0.60}, "sizes": (2, 16, 256)}, 256, +0.10, DOES_NOT_HOLD),  # no batch 32: the largest
    ],
)
def test_c17_bns_lead_over_groupnorm_at_the_smallest_batch_against_batch_32(tmp_path, kwargs, reference, change,
                                                                            expected):
    batch_size_runs(tmp_path, **kwargs)
    v = verdict_of("C17", tmp_path)
    assert v.verdict == expected, v.explanation
    (lead,) = deciding_parts(v.decision)
    assert lead.label.startswith(f"BN's lead over GroupNorm shrinks from batch {reference} to 2")
    assert lead.difference.paired and lead.difference.mean == pytest.approx(change)
    assert v.numbers[f"BN's lead over GroupNorm, change from batch {reference} to 2"].mean == pytest.approx(change)
    assert v.numbers["GroupNorm final acc by batch size"][16] == pytest.approx(0.902)
    if expected == INCONCLUSIVE:
        assert v.seeds_needed is not None


def test_c17_the_leads_over_layernorm_and_no_norm_are_reported_not_decided(tmp_path):
    batch_size_runs(tmp_path, group_at={2: 0.60})  # GroupNorm drops at batch 2, LayerNorm does not
    v = verdict_of("C17", tmp_path)
    assert v.verdict == DOES_NOT_HOLD
    layer = v.secondary[0]
    assert layer.label.startswith("BN's lead over LayerNorm shrinks from batch 32 to 2") and layer.outcome == HOLDS
    assert layer.difference.mean == pytest.approx(-0.20)
    assert [r.label.split(" shrinks")[0] for r in v.secondary[1:]] == [
        "BN's lead over no norm", "GroupNorm's lead over no norm", "LayerNorm's lead over no norm"]


@pytest.mark.parametrize(
    "random_final, expected",
    [
        (0.3, HOLDS),  # BN-only 0.7 ends 0.4 above
        (0.65, DOES_NOT_HOLD),  # close: 0.05 above
        ({"mlp": 0.3, "cnn": 0.65}, DOES_NOT_HOLD),  # one model fails
        (0.595, INCONCLUSIVE),  # 0.103 above, seeds 0.002 apart: not shown to be above 0.10
    ],
)
def test_c18_bn_only_far_above_as_many_random_weights_in_every_model(tmp_path, random_final, expected):
    bn_only_runs(tmp_path, random_final=random_final)
    v = verdict_of("C18", tmp_path)
    assert v.verdict == expected, v.explanation
    assert set(v.key) == {"CNN random weights (lr x1) final acc", "MLP 6x100 random weights (lr x1) final acc"}
    parts = {p.label.split(":")[0]: p for p in deciding_parts(v.decision)}
    randoms = random_final if isinstance(random_final, dict) else {"mlp": random_final, "cnn": random_final}
    for model, name in (("CNN", "cnn"), ("MLP 6x100", "mlp")):
        # BN-only - random, same seed: 0.7 + 0.002 x seed - (random + 0.004 x seed)
        assert parts[model].difference.paired
        assert parts[model].difference.mean == pytest.approx(0.7 - randoms[name] - 0.002)
        assert parts[model].outcome == (HOLDS if randoms[name] == 0.3 else expected)
    assert v.numbers["CNN BN-only / full"] == pytest.approx(0.702 / 0.902)
    assert v.numbers["CNN random weights (lr x1) final acc"].mean == pytest.approx(randoms["cnn"] + 0.004)
    assert all(r.outcome == HOLDS for r in v.secondary)  # BN-only 0.60 above chance, more than 0.25
    if expected == INCONCLUSIVE:
        assert v.seeds_needed is not None and "it points the claim's way" in v.explanation


def test_c18_chance_is_reported_not_decided(tmp_path):
    bn_only_runs(tmp_path, bn_only_final=0.3, random_final=0.1)  # 0.2 above random weights, 0.2 above chance
    v = verdict_of("C18", tmp_path)
    assert v.verdict == HOLDS
    above_chance = [r for r in v.secondary if "far above chance" in r.label]
    assert [r.outcome for r in above_chance] == [DOES_NOT_HOLD, DOES_NOT_HOLD]
    assert above_chance[0].difference.mean == pytest.approx(0.302 - 0.1)
    assert all(r.outcome == HOLDS for r in v.secondary if "at all" in r.label)  # above the control, 0.2


def test_c18_without_random_weights_runs_is_inconclusive(tmp_path):
    bn_only_runs(tmp_path, random_final=None)
    v = verdict_of("C18", tmp_path)
    assert v.verdict == INCONCLUSIVE and "no finished runs of both BN-only and random-weights training" in v.explanation


def test_every_claim_holds_on_the_catalogue(tmp_path):
    """write_catalogue's runs, read as scripts/report.py reads a results folder: every claim holds."""
    from analysis.report import evaluate

    results = evaluate(write_catalogue(tmp_path))
    outcomes = {r.claim.id: r.verdict.outcomes if r.verdict else {"not run"} for r in results}
    assert outcomes == {c.id: {HOLDS} for c in CLAIMS}
    c4 = next(r for r in results if r.claim.id == "C4")
    assert c4.verdict.verdict == "(a) holds; (b) holds"
