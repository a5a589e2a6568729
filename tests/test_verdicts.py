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


def test_c3_holds_and_reports_the_step_ratio(tmp_path):
    lr_runs(tmp_path)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    # no-BN x1 reaches its own final mean (0.901) at step 1000, BN x5 at 100, BN x30 at 200
    # every seed's no-BN x1 run reaches its own final accuracy at step 1000, BN x5 at 100, BN x30 at 200
    faster = deciding_parts(v.decision)[0]
    assert faster.outcome == HOLDS and math.exp(faster.difference.mean) == pytest.approx(0.1)
    assert math.exp(v.secondary[0].difference.mean) == pytest.approx(0.2)
    assert set(v.numbers["steps to the same seed's no-BN x1 final acc, BN x5 / no-BN x1, per seed"].values()) == {"100 / 1000"}
    assert v.numbers["no-BN x30 diverged"] == "3/3"


def test_c3_does_not_hold_when_bn_x30_diverges(tmp_path):
    lr_runs(tmp_path, bn_x30_diverges=True)
    v = verdict_of("C3", tmp_path)
    assert v.verdict == DOES_NOT_HOLD and "BN x30 trains: does not hold (3 of 3 runs diverged)" in v.explanation


def test_c3_does_not_hold_when_no_bn_x30_trains_fine(tmp_path):
    lr_runs(tmp_path, base_x30_final=0.92)
    assert verdict_of("C3", tmp_path).verdict == DOES_NOT_HOLD


def test_c3_is_inconclusive_when_no_bn_x30_ends_lower_within_the_noise(tmp_path):
    lr_runs(tmp_path, base_x30_final=0.885)  # 0.885, 0.895, 0.905 against 0.900, 0.901, 0.902
    v = verdict_of("C3", tmp_path)
    assert v.verdict == INCONCLUSIVE and "no BN x30 ends lower than no BN x1 (final test accuracy, x30 - x1): inconclusive" in v.explanation
    assert v.seeds_needed is not None and v.seeds_needed > 3


# --- C4 -------------------------------------------------------------------------------------------


def test_c4_holds_when_no_bn_stays_at_chance_and_its_scale_collapses(tmp_path):
    poor_init_runs(tmp_path)
    v = verdict_of("C4", tmp_path)
    assert v.verdict == HOLDS, v.explanation
    assert v.numbers["no-BN scale shrink (orders of magnitude, first to last)"] == pytest.approx(10.0)


def test_c4_does_not_hold_when_no_bn_trains(tmp_path):
    poor_init_runs(tmp_path, base_final=0.5)
    assert verdict_of("C4", tmp_path).verdict == DOES_NOT_HOLD


def test_c4_does_not_hold_when_the_scale_barely_shrinks(tmp_path):
    poor_init_runs(tmp_path, shrink=1.2)
    assert verdict_of("C4", tmp_path).verdict == DOES_NOT_HOLD


def test_c4_explains_a_last_layer_at_chance_by_eps_and_tests_it_with_a_tiny_eps(tmp_path):
    # the logits' scale at init, 0.5 / 100^5 = 5e-11, squared is far below eps = 1e-5
    poor_init_runs(tmp_path, last_final=0.1, tiny_eps_final=0.6)
    v = verdict_of("C4", tmp_path)
    assert v.verdict == DOES_NOT_HOLD
    lifted, above = v.secondary
    assert lifted.outcome == HOLDS and lifted.difference.paired
    assert lifted.difference.mean == pytest.approx(0.5 + 0.009, abs=1e-9)  # 0.6 + 0.01 seed vs 0.1 + 0.001 seed
    assert above.outcome == HOLDS
    assert "5.0e-11, squared is far below BN's eps = 1e-05" in v.explanation and "a tiny eps supports it" in v.explanation


def test_c4_says_when_a_tiny_eps_does_not_lift_the_last_layer(tmp_path):
    poor_init_runs(tmp_path, last_final=0.1, tiny_eps_final=0.1)
    v = verdict_of("C4", tmp_path)
    assert v.secondary[0].outcome != HOLDS and "a tiny eps supports it" not in v.explanation


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


@pytest.mark.parametrize(
    "before, after, expected", [(0.95, 0.90, HOLDS), (0.90, 0.95, DOES_NOT_HOLD), (0.95, 0.9505, INCONCLUSIVE)]
)
def test_c6_says_which_placement_is_better_or_that_they_tie(tmp_path, before, after, expected):
    placement_runs(tmp_path, before, after)
    v = verdict_of("C6", tmp_path)
    assert v.verdict == expected, v.explanation
    assert v.numbers["sigmoid before BN-input kurtosis"].mean == pytest.approx(0.5)
    if expected == INCONCLUSIVE:  # a tie, by two one-sided tests within +-0.005: before is not the better place
        assert "they tie" in v.explanation and v.numbers["sigmoid: before vs after"] == "they tie"


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


def test_c9_overlapping_gains_are_inconclusive(tmp_path):
    dropout_runs(tmp_path, bn_gain=0.0505)
    v = verdict_of("C9", tmp_path)
    assert v.verdict == INCONCLUSIVE and v.seeds_needed is not None, v.explanation


# --- C14-C18: later work --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "noisy_final, base_final, expected",
    [(0.95, 0.85, HOLDS), (0.90, 0.85, DOES_NOT_HOLD), (0.95, 0.97, DOES_NOT_HOLD), (0.95, 0.9505, INCONCLUSIVE)],
)
def test_c14_noisy_bn_against_bn_and_no_bn(tmp_path, noisy_final, base_final, expected):
    noisy_runs(tmp_path, noisy_final=noisy_final, base_final=base_final)
    v = verdict_of("C14", tmp_path)
    assert v.verdict == expected, v.explanation
    assert v.seeds == 3
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


@pytest.mark.parametrize("bn_scale, expected", [(0.1, HOLDS), (3.0, DOES_NOT_HOLD), (1.0, INCONCLUSIVE)])
def test_c16_all_three_landscape_measures_lower_with_bn(tmp_path, bn_scale, expected):
    landscape_runs(tmp_path, bn_scale=bn_scale)
    v = verdict_of("C16", tmp_path)
    assert v.verdict == expected, v.explanation
    assert v.numbers["no-BN beta"].mean == pytest.approx(10.1)


@pytest.mark.parametrize("bn_small, expected", [(0.70, HOLDS), (0.95, DOES_NOT_HOLD)])
def test_c17_bn_loses_its_lead_at_small_batches(tmp_path, bn_small, expected):
    batch_size_runs(tmp_path, bn_small=bn_small)
    v = verdict_of("C17", tmp_path)
    assert v.verdict == expected, v.explanation
    # per seed: (bn_small - 0.85) - (0.90 - 0.85)
    assert v.numbers["BN advantage change, batch 2 vs 256"].mean == pytest.approx(bn_small - 0.90)
    assert v.numbers["GroupNorm advantage change, batch 2 vs 256"].mean == pytest.approx(0.0)
    assert v.numbers["BN final acc by batch size"][16] == pytest.approx(0.902)


@pytest.mark.parametrize("bn_only_final, expected", [(0.7, HOLDS), (0.15, DOES_NOT_HOLD), (0.3, DOES_NOT_HOLD), (0.348, INCONCLUSIVE)])
def test_c18_bn_only_far_above_chance_in_every_model(tmp_path, bn_only_final, expected):
    bn_only_runs(tmp_path, bn_only_final=bn_only_final)
    v = verdict_of("C18", tmp_path)
    assert v.verdict == expected, v.explanation
    assert set(v.key) == {"CNN full training final acc", "MLP 6x100 full training final acc"}
    assert v.numbers["CNN BN-only / full"] == pytest.approx((bn_only_final + 0.002) / 0.902)
