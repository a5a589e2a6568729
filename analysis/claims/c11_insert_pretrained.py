"""C11: BN can be inserted into a trained network without changing its function, then fine-tuned (the notes)."""

from __future__ import annotations

from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import finished, probe_results
from analysis.rules import all_of, condition, within
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs

OUTPUT_TOL = 1e-4  # largest change of an output after inserting BN
KEEPS = 0.005  # fine-tuning "keeps" accuracy if it loses at most this much

ARMS = (Arm("insert_pretrained", {}, probes=("insert_pretrained",), name="inserted"),)


def verdict(arms: Arms) -> Verdict:
    """Per run of the insert_pretrained probe: the largest output change right after inserting BN
    is at most OUTPUT_TOL, and fine-tuning ends no more than KEEPS below the accuracy right after insertion."""
    runs = arms["inserted"]
    results = probe_results(finished(runs), "insert_pretrained")
    if not results:
        return no_runs(runs, "no runs with the insert_pretrained probe")
    diff = max(r["max_output_difference"] for r in results)
    kept = [r["finetuned"].get("final_test_acc") for r in results]
    numbers = {
        "largest output change": diff,
        "acc before": mean_interval(r["test_acc_before"] for r in results),
        "acc after insertion": mean_interval(r["test_acc_after_insertion"] for r in results),
        "acc after fine-tune": mean_interval(kept),
        "control (no BN) after fine-tune": mean_interval(
            (r.get("control_without_bn") or {}).get("final_test_acc") for r in results
        ),
        "runs": len(results),
    }
    lost = [
        r["test_acc_after_insertion"] - r["finetuned"]["final_test_acc"]
        for r in results
        if r["finetuned"].get("final_test_acc") is not None
    ]
    decision = all_of("C11", [
        within("inserting BN leaves the function unchanged", diff, OUTPUT_TOL, "largest change of an output"),
        condition("every fine-tune trains", len(lost) == len(results), f"{len(results) - len(lost)} of {len(results)} diverged"),
        within("fine-tuning keeps the accuracy", max(lost, default=None), KEEPS,
               "largest loss against the accuracy right after insertion"),
    ])
    return decided(decision, runs, numbers, ["largest output change", "acc after insertion", "acc after fine-tune"],
                   seeds=len(results))


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = arms["inserted"]
    results = probe_results(finished(runs), "insert_pretrained")
    if not results:
        return []
    stages = {
        "before": [r["test_acc_before"] for r in results],
        "after insertion": [r["test_acc_after_insertion"] for r in results],
        "after fine-tune": [r["finetuned"].get("final_test_acc") for r in results],
        "control (no BN), fine-tuned": [(r.get("control_without_bn") or {}).get("final_test_acc") for r in results],
    }
    points = {stage: mean_interval(values) for stage, values in stages.items()}
    return [
        plots.point_chart(
            {"test accuracy": points},
            Path(folder) / "c11_insertion.png",
            "test accuracy",
            "Inserting BN into a trained network",
        )
    ]


CLAIM = Claim(
    text="BN can be inserted into a trained network without changing its function, then fine-tuned",
    source="the notes (VGG-style)",
    protocol="train a net without BN; insert BN with gamma = sqrt(var + eps), beta = mean from training data; "
    "compare outputs; fine-tune",
    rule="outputs equal to float tolerance right after insertion; fine-tuning keeps or improves accuracy",
    method=f"inserting BN may change an output by at most {OUTPUT_TOL:g}; fine-tuning keeps the accuracy if it loses at "
    f"most {KEEPS:g}.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
