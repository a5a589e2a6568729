"""docs/claims.md, the catalogue in one table, written from the claim modules (analysis/claims/).

`python -m analysis.catalogue` prints it; `python -m analysis.catalogue --write` rewrites it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis.claim import Claim
from analysis.claims import CLAIMS

DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "claims.md"


INTRO = """\
# The claims this project reproduces

Each row is one claim about batch normalization (BN), where it comes from, the protocol that tests
it, and the rule that turns measured runs into a verdict. The project runs each one as a Hydra
experiment (`python train.py -m experiment=<experiment>`), over several seeds, and
`scripts/report.py` computes every verdict from the runs themselves (each claim's rule in its module
under `analysis/claims/`): nothing is typed in by hand.

This file is generated from the claim modules (`python -m analysis.catalogue --write`); edit a claim
in its module `analysis/claims/c<number>_<slug>.py`, not this file.

Sources: Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by Reducing
Internal Covariate Shift" (the paper); Santurkar et al. 2018, "How Does Batch Normalization Help
Optimization?"; Bjorck et al. 2018, "Understanding Batch Normalization"; Frankle et al. 2020,
"Training BatchNorm and Only BatchNorm"; Ioffe 2017, "Batch Renormalization"; and four explanatory
notes on BN that this project started from, kept in `docs/notes/` (cited below as "the notes":
000 bias and test-time averages, 001 the closed-form backward and sigmoid saturation, 002 dropout and
inserting BN into a pre-trained VGG, 003 the 7-layer CNN with a poor initialization).

Where the paper leaves a setting open (optimizer, learning rate, init scale for MNIST), the project
picks one, writes it in the experiment's config (`configs/experiment/`), and the report says so.

## The paper's numbers, for reference

- MNIST (Sec. 4.1, Fig. 1): 3 fully connected hidden layers of 100 sigmoid units, weights from a
  small random Gaussian, 10-way softmax + cross-entropy, 50,000 steps of 60 examples, BN on every
  hidden layer. Fig. 1a: test accuracy vs steps (BN higher and faster; no numbers printed, the axis
  runs 0.7-1.0). Fig. 1b,c: the 15th/50th/85th percentiles of the input to one sigmoid of the last
  hidden layer over training: drifting without BN, steady with BN.
- ImageNet (Sec. 4.2, Inception, batch 32, steps to reach 72.2% / best accuracy):
  Inception 31.0M / 72.2% (lr 0.0015); BN-Baseline 13.3M / 72.7%; BN-x5 2.1M / 73.0% (lr x5:
  14x fewer steps); BN-x30 2.7M / 74.8% (lr x30); BN-x5-Sigmoid never reaches 72.2%, 69.8% best;
  Inception with sigmoid stays at chance; Inception at lr x5 diverges.
  BN-x5/x30 also drop Dropout, cut L2 by 5x and decay the lr 6x faster.
- Test time (Sec. 3.1, Alg. 2): population statistics, E[x] = mean of batch means,
  Var[x] = m/(m-1) * mean of batch variances (unbiased), over many training batches.
- Placement (Sec. 3.2): BN right before the nonlinearity, z = g(BN(Wu)); the bias b is dropped
  because the mean subtraction cancels it (beta takes its role).
- Scale invariance (Sec. 3.3): BN(Wu) = BN((aW)u); d BN((aW)u)/du = d BN(Wu)/du;
  d BN((aW)u)/d(aW) = (1/a) d BN(Wu)/dW.
"""

DATA_NOTE = """\
## Data

The experiment files name MNIST (C1-C3, C5-C18) and, for the CNN of C4, CIFAR-10 (as in the notes).
Both load through torchvision and download where the network allows. The committed results are on
MNIST (`results/mnist`, the CNN of C4 included), with Fashion-MNIST beside them as a replication
(`results/fashion_mnist`); scikit-learn's digits serve quick looks. The report always names the data
set it ran on.
"""


def _row(claim: Claim) -> str:
    arms = "; ".join(f"`{sweep.describe()}`" for sweep in claim.sweeps())
    own = [f"{arm.name}: {arm.seeds}" for arm in claim.arms if arm.seeds is not None]
    seeds = f"{claim.seeds}" + (f" ({'; '.join(own)})" if own else "")
    cells = [f"{claim.id} `{claim.slug}`", claim.text, claim.source, arms, seeds, claim.protocol, claim.rule]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render() -> str:
    """The text of docs/claims.md."""
    header = (
        "| id | claim | source | arms (experiment: settings) | seeds per arm | protocol (defaults; all are config) | verdict rule |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    numbers = [f"- {c.id}: {c.source_number}" for c in CLAIMS if c.source_number]
    parts = [
        INTRO,
        "## Catalogue\n\n" + header + "\n" + "\n".join(_row(c) for c in CLAIMS) + "\n",
        "The source's own numbers that the report prints beside ours:\n\n" + "\n".join(numbers) + "\n",
        "C1-C13 are the paper and the notes; C14-C18 go beyond them and no public reproduction has them all.\n",
        "Every comparison is decided on the difference between arms with its 95% interval (Welch, or paired by "
        "seed where the rule says so),\nnever on whether two intervals overlap; a tie only by an equivalence test "
        "against the rule's margin. A run that\nseveral claims' arms name is trained once and read by each "
        "(`scripts/reproduce.py`). How each claim's module\n(in the vocabulary of `analysis/rules.py`) makes "
        "its rule precise is in its docstrings and in the report's method section.\n",
        DATA_NOTE,
    ]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    if argv and argv != ["--write"]:
        print("error: usage: python -m analysis.catalogue [--write]", file=sys.stderr)
        return 2
    if argv == ["--write"]:
        DOCS_FILE.parent.mkdir(parents=True, exist_ok=True)
        DOCS_FILE.write_text(render())
        print(f"wrote {DOCS_FILE}")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
