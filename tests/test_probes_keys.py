"""The names each probe module exports for the keys it writes: the strings committed records hold,
and exactly the keys a real (tiny) run writes."""
from __future__ import annotations

import json

import torch

from train import run
from training.probes import activations, bn_identities, bn_math, grad_norms, ics, insert_pretrained, landscape
from training.probes import predictions, saturation, scale_invariance, test_time_stats
from training.probes.base import SKIPPED

LOOP_KEYS = {"step", "test/loss", "test/acc", "train/acc"}


def test_the_names_are_the_strings_of_the_committed_records():
    assert activations.layer_key("fc2", activations.percentile(50)) == "act/fc2/p50"
    assert activations.unit_key("conv3", 7, "p85") == "act/conv3/u7/p85"
    assert [activations.layer_key("fc1", m) for m in activations.MOMENTS] == [
        "act/fc1/mean", "act/fc1/std", "act/fc1/skew", "act/fc1/kurt"]
    assert activations.layer_key("fc1", activations.HIST) == "act/fc1/hist"
    assert [activations.bn_input_key("fc1", m) for m in activations.BN_INPUT_MOMENTS] == ["bnin/fc1/skew", "bnin/fc1/kurt"]
    assert activations.layer_key(r"([^/]+)", "std") == r"act/([^/]+)/std"  # a pattern that finds the layers
    assert saturation.layer_key("fc3") == "sat/fc3"
    assert (grad_norms.layer_key("out"), grad_norms.FIRST_OVER_LAST) == ("grad/out", "grad/first_over_last")
    assert [ics.layer_key("fc2", s) for s in ics.STATS] == ["ics/fc2/l2", "ics/fc2/cos"]
    assert (ics.L2, ics.COS) == ("ics/l2", "ics/cos")
    assert landscape.KEYS == ("landscape/loss_range", "landscape/grad_change", "landscape/beta", "landscape/grad_norm")
    assert (landscape.LOSS_RANGE, landscape.GRAD_CHANGE, landscape.BETA, landscape.GRAD_NORM) == landscape.KEYS
    assert predictions.KEYS == (predictions.MAJORITY_SHARE, predictions.CLASSES, predictions.ENTROPY) == (
        "pred/majority_share", "pred/classes", "pred/entropy")
    assert SKIPPED == "skipped"
    assert test_time_stats.MODES == ("ema", "population", "batch")
    assert (test_time_stats.ACCURACY, test_time_stats.MAX_PREDICTION_CHANGE, test_time_stats.EMA_VS_POPULATION,
            test_time_stats.ACCURACY_DIFFERENCE, test_time_stats.PREDICTION_AGREEMENT) == (
        "accuracy", "max_prediction_change", "ema_vs_population", "accuracy_difference", "prediction_agreement")
    assert (scale_invariance.BIAS_BEFORE_BN, scale_invariance.GRAD_NORM_RATIO, scale_invariance.OUTPUT_CHANGE,
            scale_invariance.LAYERS_WITH_BIAS) == ("bias_before_bn", "grad_norm_ratio", "output_change", "layers_with_bias")
    assert (insert_pretrained.TEST_ACC_BEFORE, insert_pretrained.TEST_ACC_AFTER_INSERTION, insert_pretrained.FINETUNED,
            insert_pretrained.CONTROL_WITHOUT_BN, insert_pretrained.FINAL_TEST_ACC) == (
        "test_acc_before", "test_acc_after_insertion", "finetuned", "control_without_bn", "final_test_acc")
    assert (bn_math.VS_TORCH, bn_math.VS_AUTOGRAD, bn_math.TOLERANCE, bn_math.GRADCHECK) == (
        "vs_torch", "vs_autograd", "tolerance", "gradcheck")


def test_the_moments_are_named_as_activations_computes_them():
    assert tuple(activations.moments(torch.randn(3, 50))) == activations.MOMENTS


def test_a_run_writes_exactly_the_keys_the_names_make(tmp_path, config):
    every_probe = "probes=[activations,saturation,grad_norms,ics,landscape,predictions]"
    run(config("train.steps=10", "train.eval_every=10", every_probe), tmp_path)
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    hidden, width = ("fc1", "fc2", "fc3"), 100  # the default MLP: 3 x 100 sigmoid units, BN before each
    units = activations.tracked_units(width, 3)
    expected = set(LOOP_KEYS)
    for layer in hidden:
        expected |= {activations.layer_key(layer, activations.percentile(p)) for p in activations.PERCENTILES}
        expected |= {activations.unit_key(layer, u, activations.percentile(p)) for u in units for p in activations.PERCENTILES}
        expected |= {activations.layer_key(layer, m) for m in activations.MOMENTS}
        expected |= {activations.bn_input_key(layer, m) for m in activations.BN_INPUT_MOMENTS}
        expected.add(saturation.layer_key(layer))
    expected |= {grad_norms.layer_key(layer) for layer in (*hidden, "out")} | {grad_norms.FIRST_OVER_LAST}
    expected |= {ics.layer_key(layer, s) for layer in (*hidden[1:], "out") for s in ics.STATS} | {ics.L2, ics.COS}
    expected |= set(landscape.KEYS) | set(predictions.KEYS)
    assert set(first) == expected


def test_end_of_run_results_have_exactly_the_named_keys(tmp_path, config):
    tiny = ["train.steps=20", "train.eval_every=20"]
    with_bn = run(config(*tiny, "probes=[test_time_stats,scale_invariance,bn_math]",
                         "probes.test_time_stats.placements=1"), tmp_path / "bn")
    t = test_time_stats
    result = with_bn[test_time_stats.TestTimeStats.name]
    assert set(result) == {t.BATCH_SIZES, t.PLACEMENTS, t.ACCURACY, t.MAX_PREDICTION_CHANGE, t.UNDEFINED, t.EMA_VS_POPULATION}
    assert set(result[t.ACCURACY]) == set(result[t.MAX_PREDICTION_CHANGE]) == set(t.MODES)
    assert set(result[t.EMA_VS_POPULATION]) == {t.ACCURACY_DIFFERENCE, t.PREDICTION_AGREEMENT}

    s = scale_invariance
    result = with_bn[s.ScaleInvariance.name]
    assert set(result) == {s.LAYERS, s.IDENTITIES, s.BIAS_BEFORE_BN}
    errors = {bn_identities.FORWARD, bn_identities.GRAD_INPUT, bn_identities.GRAD_WEIGHT, s.WEIGHT_GRADIENT_RATIO_TIMES_A}
    for at_scale in result[s.IDENTITIES].values():
        assert set(at_scale) == errors | {s.EXPLAINED_BY_EPS, s.EXACT} and set(at_scale[s.EXACT]) == errors
    assert set(result[s.BIAS_BEFORE_BN]) == {s.GRAD_NORM_RATIO, s.OUTPUT_CHANGE, s.LAYERS_WITH_BIAS}

    b = bn_math
    result = with_bn[b.BNMath.name]
    assert set(result) == {b.LAYERS, b.TOLERANCE, b.VS_TORCH, b.VS_AUTOGRAD, b.GRADCHECK}
    assert set(result[b.VS_TORCH]) == {b.OUTPUT, b.GRAD_INPUT, b.GRAD_WEIGHT, b.GRAD_BIAS, b.RUNNING_MEAN, b.RUNNING_VAR}
    assert set(result[b.VS_AUTOGRAD]) == {b.GRAD_INPUT, b.GRAD_WEIGHT, b.GRAD_BIAS}

    i = insert_pretrained
    without_bn = run(config(*tiny, "bn=none", "probes=[insert_pretrained,bn_math]", "probes.insert_pretrained.finetune_steps=10"),
                     tmp_path / "none")
    result = without_bn[i.InsertPretrained.name]
    assert set(result) == {i.TEST_ACC_BEFORE, i.MAX_OUTPUT_DIFFERENCE, i.TEST_ACC_AFTER_INSERTION, i.FINETUNE_STEPS,
                           i.FINETUNE_LR_MULT, i.FINETUNED, i.CONTROL_WITHOUT_BN}
    assert set(result[i.FINETUNED]) == set(result[i.CONTROL_WITHOUT_BN]) == {i.STATUS, i.FINAL_TEST_ACC, i.CURVE}
    assert set(without_bn[b.BNMath.name]) == {SKIPPED}
