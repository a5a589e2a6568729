"""C5: backprop through BN is invariant to weight scale; larger weights get smaller gradients (paper Sec. 3.3)."""

from __future__ import annotations

import math
from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import ARM_LABELS, cfg, diverged, final_acc, finished, probe_results, select
from analysis.rules import all_of, at_least, condition, within
from analysis.runs import Run
from analysis.stats import Estimate
from analysis.verdict import Verdict, decided, no_runs

IDENTITY_TOL = 1e-9  # the identities with eps = 0 (exact in arithmetic), computed in float64
VARIES_LITTLE = 0.05  # range of mean final accuracy across init scales
SCALES = "1e-4,1e-3,1e-2,1e-1,1.0"  # init.scale

ARMS = (
    Arm("scale_invariance", {"bn": "none", "init.scale": SCALES}, probes=("scale_invariance",), name="no BN"),
    Arm("scale_invariance", {"bn": "before", "init.scale": SCALES}, probes=("scale_invariance",), name="BN"),
)


def identity_errors(results: list[dict]) -> dict[str, dict[str, float]]:
    """Per scale a: the worst error of each identity with eps = 0 (the probe's `exact`), where the
    identities hold exactly in arithmetic; the ratio a * ||dL/d(aW)|| / ||dL/dW|| is measured against 1."""
    out: dict[str, dict[str, float]] = {}
    for result in results:
        for a, errors in result.get("identities", {}).items():
            exact = errors.get("exact", {})
            measured = {k: exact[k] for k in ("forward", "grad_input", "grad_weight") if k in exact}
            if "weight_gradient_ratio_times_a" in exact:
                measured["weight_gradient_ratio_times_a"] = abs(exact["weight_gradient_ratio_times_a"] - 1)
            worst = out.setdefault(a, {})
            for k, v in measured.items():
                worst[k] = max(worst.get(k, -math.inf), v)
    return dict(sorted(out.items(), key=lambda kv: float(kv[0])))


def eps_effect(results: list[dict]) -> float | None:
    """The largest forward error with BN's own eps (which breaks the identities slightly), for context."""
    values = [e["forward"] for r in results for e in r.get("identities", {}).values() if "forward" in e]
    return max(values) if values else None


def accuracy_by_scale(runs: list[Run]) -> dict[float, Estimate]:
    scales = sorted({float(cfg(r, "init.scale")) for r in runs if cfg(r, "init.scale") is not None})
    return {s: final_acc(select(runs, init__scale=s)) for s in scales}


def verdict(arms: Arms) -> Verdict:
    """Every Sec. 3.3 identity holds at every a to IDENTITY_TOL with eps = 0 (where it is exact;
    the deviation BN's own eps causes is reported beside it); and across init scales the range of
    BN's mean final accuracy is at most VARIES_LITTLE while the baseline's is at least that (or a
    baseline run diverges)."""
    bn, base = arms["BN"], arms["no BN"]
    runs = base + bn
    results = probe_results(finished(bn), "scale_invariance")
    bn_acc, base_acc = accuracy_by_scale(bn), accuracy_by_scale(base)
    if not results or not bn_acc or not base_acc:
        return no_runs(
            runs, "no BN runs with the scale_invariance probe, or an arm of the init-scale sweep is missing"
        )
    errors = identity_errors(results)
    failing = [f"{k} at a={a} ({v:.1e})" for a, e in errors.items() for k, v in e.items() if v > IDENTITY_TOL]
    spread = {
        name: max(v.mean for v in acc.values() if v.mean is not None)
        - min(v.mean for v in acc.values() if v.mean is not None)
        for name, acc in (("BN", bn_acc), ("no-BN", base_acc))
        if any(v.mean is not None for v in acc.values())
    }
    numbers = {
        "identities failing": len(failing),
        "largest identity error (eps = 0)": max((v for e in errors.values() for v in e.values()), default=None),
        "largest forward error with BN's eps": eps_effect(results),
        "BN final acc range over scales": spread.get("BN"),
        "no-BN final acc range over scales": spread.get("no-BN"),
        "BN final acc by scale": {f"{s:g}": e for s, e in bn_acc.items()},
        "no-BN final acc by scale": {f"{s:g}": e for s, e in base_acc.items()},
        "no-BN runs diverged": len(diverged(base)),
    }
    seeds = min([e.n for e in (*bn_acc.values(), *base_acc.values())] or [0])
    if seeds < 1:
        return no_runs(runs, "no finished runs at some init scale")
    worst = numbers["largest identity error (eps = 0)"]
    where = f" ({', '.join(failing[:4])})" if failing else ""
    decision = all_of("C5", [
        within(f"the Sec. 3.3 identities hold at every a with eps = 0{where}", worst, IDENTITY_TOL, "largest error"),
        within("BN's final accuracy varies little across init scales", spread.get("BN"), VARIES_LITTLE,
               "range of the scales' mean accuracies"),
        condition("the baseline depends on the scale: a run diverges", True, f"{len(diverged(base))} runs diverged")
        if diverged(base) else
        at_least("the baseline's final accuracy varies across init scales", spread.get("no-BN"), VARIES_LITTLE,
                 "range of the scales' mean accuracies"),
    ])
    key = ["largest identity error (eps = 0)", "BN final acc range over scales", "no-BN final acc range over scales"]
    return decided(decision, runs, numbers, key, seeds=seeds)


def figures(arms: Arms, folder: Path) -> list[Path]:
    by_scale = {ARM_LABELS[p]: accuracy_by_scale(arms[name]) for p, name in (("none", "no BN"), ("before", "BN"))}
    by_scale = {k: v for k, v in by_scale.items() if v}
    if not by_scale:
        return []
    return [plots.accuracy_by_scale(by_scale, Path(folder) / "c5_accuracy_by_scale.png",
                                    "Final accuracy vs initial weight scale")]


CLAIM = Claim(
    text="backprop through BN is invariant to weight scale; larger weights get smaller gradients",
    source="paper Sec. 3.3; the notes",
    protocol="identities checked numerically on random layers for a in {0.01, 0.1, 10, 100}; plus a sweep of "
    "init weight scale (1e-4..1e0) with and without BN",
    rule="identities hold to float tolerance; BN's final accuracy varies little across init scales, the "
    "baseline's a lot",
    method=f"the identities are checked with eps = 0, where they are exact, to {IDENTITY_TOL:g} (float64 round-off); "
    f"BN's mean final accuracy may range at most {VARIES_LITTLE:g} over the init scales, the baseline's at least that.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
