"""Tables, statistics (against values worked out by hand) and plots of the analysis package."""

from __future__ import annotations

import pandas as pd
import pytest
from runfactory import write_run

from analysis import plots
from analysis.stats import SPREAD_FLOOR, Estimate, curve_interval, drift_score, mean_interval, steps_to_target
from analysis.tables import curves, group_by_settings, load_all, runs_table, swept_keys


def test_mean_interval_is_the_student_t_interval():
    # [1, 2, 3]: mean 2, s = 1, t(0.975, 2) = 4.302653, half width 4.302653 / sqrt(3) = 2.484138
    e = mean_interval([1.0, 2.0, 3.0])
    assert (e.mean, e.n) == (2.0, 3)
    assert e.low == pytest.approx(2 - 2.484138, abs=1e-6) and e.high == pytest.approx(2 + 2.484138, abs=1e-6)
    # [0.90, 0.92]: mean 0.91, s = 0.0141421, t(0.975, 1) = 12.706205, half width 12.706205 * 0.01 = 0.127062
    e = mean_interval([0.90, 0.92])
    assert e.high - e.mean == pytest.approx(0.127062, abs=1e-6)


def test_an_estimate_far_below_one_keeps_its_significant_digits():
    assert Estimate(0.91, 0.9, 0.92, 3).format() == "0.910 [0.900, 0.920] (n=3)"
    assert Estimate(1.2e-13, 1.0e-13, 1.4e-13, 5).format() == "1.2e-13 [1e-13, 1.4e-13] (n=5)"
    assert Estimate(0.0, 0.0, 0.0, 5).format() == "0.000 [0.000, 0.000] (n=5)"


def test_one_value_gives_no_interval_and_missing_values_are_left_out():
    assert mean_interval([0.5]) == Estimate(0.5, None, None, 1)
    assert mean_interval([]) == Estimate(None, None, None, 0)
    assert mean_interval([None, float("nan"), 2.0, 4.0]).mean == 3.0
    assert mean_interval([None, 2.0, 4.0]).n == 2


def test_apart_needs_both_intervals_and_no_overlap():
    high, low = Estimate(0.9, 0.88, 0.92, 3), Estimate(0.8, 0.7, 0.9, 3)
    assert not high.apart_above(low)  # 0.88 < 0.90: they overlap
    assert high.apart_above(Estimate(0.8, 0.75, 0.85, 3))
    assert not high.apart_above(Estimate(0.5, None, None, 1))


def test_steps_to_target_reports_never_as_none():
    series = [(0, 0.1), (100, 0.5), (200, 0.91), (300, 0.89)]
    assert steps_to_target(series, 0.9) == 200
    assert steps_to_target(series, 0.5) == 100
    assert steps_to_target(series, 0.95) is None


def test_drift_score_by_hand():
    steps = [0, 100, 200, 300]
    # after 10% of 1000 steps: steps 100..300. p15 0,1,1 (range 1); p50 1,2,3 (range 2); p85 2,2,3 (range 1);
    # spread (p85 - p15) 2, 1, 2 -> mean 5/3. drift = mean(1, 2, 1) / (5/3) = (4/3) * (3/5) = 0.8
    p15, p50, p85 = [9, 0, 1, 1], [9, 1, 2, 3], [9, 2, 2, 3]  # step 0 is left out, whatever it holds
    assert drift_score(p15, p50, p85, steps, 1000) == pytest.approx(0.8)
    assert drift_score([0, 0], [1, 1], [2, 2], [0, 50], 1000) is None  # no two evals after 10%
    assert drift_score([0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 100, 200], 1000) is None  # no spread


def test_drift_score_counts_a_degenerate_width_as_its_floor():
    # a distribution 0.001 wide whose percentiles each move by 0.05: over its own width that is 50, over
    # the floor of 0.1 it is 0.5
    p15, p50, p85 = [0, 0.0, 0.05], [0, 0.0005, 0.0505], [0, 0.001, 0.051]
    assert drift_score(p15, p50, p85, [0, 100, 200], 1000) == pytest.approx(0.05 / SPREAD_FLOOR)


def sweep(root):
    for seed in (0, 1):
        for placement in ("none", "before"):
            write_run(
                root / f"{placement}{seed}",
                seed=seed,
                bn=placement,
                steps=200,
                eval_every=100,
                acc=lambda step, seed=seed: 0.5 + step / 1000 + seed / 100,
            )
    return load_all(root)


def test_swept_keys_and_groups_leave_the_seed_out(tmp_path):
    runs = sweep(tmp_path)
    table = runs_table(runs)
    assert swept_keys(table) == ["cfg/bn.placement"]
    groups = group_by_settings(table)
    assert [g for g, _ in groups] == [{"cfg/bn.placement": "before"}, {"cfg/bn.placement": "none"}]
    assert all(sorted(rows["seed"]) == [0, 1] for _, rows in groups)


def test_curves_is_long_format_without_nan_rows(tmp_path):
    table = curves(sweep(tmp_path))
    assert list(table.columns) == [
        "path",
        "status",
        "seed",
        "cfg/bn.placement",
        "cfg/dataset.name",
        "step",
        "metric",
        "value",
    ]
    assert not table.isna().any().any()
    # per run: 3 evals x (test/acc, train/acc, test/loss) + 2 train-loss lines
    assert len(table) == 4 * (3 * 3 + 2)
    acc = table[(table.metric == "test/acc") & (table["cfg/bn.placement"] == "none")]
    band = curve_interval(acc, "test/acc")
    assert list(band["step"]) == [0, 100, 200]
    assert band["mean"].tolist() == pytest.approx([0.505, 0.605, 0.705])
    assert list(band["n"]) == [2, 2, 2]
    # two values 0.01 apart: s = 0.0070711, half width = 12.706205 * 0.0070711 / sqrt(2) = 0.063531
    assert (band["high"] - band["mean"]).tolist() == pytest.approx([0.063531] * 3, abs=1e-6)


def estimate(mean, half=0.01, n=3):
    return Estimate(mean, mean - half, mean + half, n)


def frame(values):
    return pd.DataFrame(
        {
            "step": [0, 100, 200],
            "mean": values,
            "low": [v - 0.02 for v in values],
            "high": [v + 0.02 for v in values],
            "n": [3, 3, 3],
        }
    )


PLOTS = {
    "convergence": lambda p: plots.convergence(
        {"no BN": frame([0.1, 0.6, 0.8]), "BN": frame([0.1, 0.9, 0.95])}, p, "t"
    ),
    "percentiles": lambda p: plots.percentile_bands(
        {
            k: pd.DataFrame({"step": [0, 100], "p15": [-1, d - 1], "p50": [0, d], "p85": [1, d + 1]})
            for k, d in (("a", 2), ("b", 0))
        },
        p,
    ),
    "scale_by_depth": lambda p: plots.scale_by_depth(
        {"no BN": {f"conv{k}": estimate(10.0**-k, 0) for k in range(1, 5)}}, p
    ),
    "steps_by_lr": lambda p: plots.steps_by_lr_mult(
        {"no BN": {1.0: 1000, 30.0: None}, "BN": {1.0: 400, 30.0: 200}}, p, "t", 1000
    ),
    "point_chart": lambda p: plots.point_chart(
        {"BN": {"sigmoid": estimate(0.9), "relu": estimate(0.95, n=1)}},
        p,
        "acc",
        reference=0.1,
        reference_label="chance",
    ),
    "accuracy_by_scale": lambda p: plots.accuracy_by_scale({"BN": {1e-4: estimate(0.9), 1.0: estimate(0.91)}}, p),
    "accuracy_by_batch_size": lambda p: plots.accuracy_by_batch_size(
        {"batch": {1: None, 2: 0.5, 1000: 0.9}, "ema": {1: 0.9, 1000: 0.9}}, p
    ),
    "errors_vs_tolerance": lambda p: plots.errors_vs_tolerance({"output": 1e-7, "grad": 0.0}, 1e-5, p),
}


@pytest.mark.parametrize("kind", sorted(PLOTS))
def test_every_plot_writes_the_same_png_twice(tmp_path, kind):
    first, second = PLOTS[kind](tmp_path / "a.png"), PLOTS[kind](tmp_path / "b.png")
    data = first.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
    assert data == second.read_bytes()
    assert b"Software" not in data


def test_docs_claims_md_is_the_rendered_registry():
    from analysis.catalogue import DOCS_FILE, render
    from analysis.claims import CLAIMS, experiments_for

    assert DOCS_FILE.read_text() == render(), "docs/claims.md is stale: run python -m analysis.catalogue --write"
    text = render()
    assert all(f"| {c.id} `{c.slug}` | {c.text} |" in text for c in CLAIMS)
    assert "14x fewer steps" in text and "../shared" not in text
    assert all((DOCS_FILE.parent / "notes").glob(f"{n:03d}_*.txt") for n in range(4))
    assert experiments_for(["C2", "C1", "C8"]) == ["fig1_mnist", "scale_invariance"]


def test_a_diverged_run_keeps_its_curve_up_to_the_divergence_and_no_null_rows(tmp_path):
    write_run(tmp_path / "a", steps=400, eval_every=100, diverged_at=300)
    table = curves(load_all(tmp_path))
    assert set(table["status"]) == {"diverged"} and not table.isna().any().any()
    assert sorted(table[table.metric == "test/acc"]["step"]) == [0, 100, 200]
    assert 300 not in set(table["step"])  # the line logged a null loss: no row
