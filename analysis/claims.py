"""The claims catalogue: one registry that the experiments, the reproduce script, the verdicts and
the report all read. Each claim names the experiment (configs/experiment/<name>.yaml) whose runs
test it, the claim's text, its source, the protocol, the rule that turns runs into a verdict
(implemented in analysis/verdicts.py) and the source's own number where it prints one.

`python -m analysis.claims` prints docs/claims.md; `python -m analysis.claims --write` rewrites it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from analysis.arms import Arm

DEFAULT_SEEDS = 5  # seeds per arm; the headline claims C1-C3 take HEADLINE_SEEDS
HEADLINE_SEEDS = 10
BOTH = "none,before"  # the two arms of most comparisons: no BN, BN right before the nonlinearity
DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "claims.md"


@dataclass(frozen=True)
class Claim:
    id: str  # C1, C2, ...
    slug: str  # the catalogue's short name
    arms: tuple[Arm, ...]  # the runs it reads (analysis/arms.py); claims naming the same job share its run
    text: str = ""
    source: str = ""
    protocol: str = ""
    rule: str = ""
    source_number: str | None = None  # the source's own number, shown beside ours in the report
    seeds: int = DEFAULT_SEEDS  # seeds per arm unless the arm says otherwise

    @property
    def experiments(self) -> tuple[str, ...]:
        """The experiments (configs/experiment/<name>.yaml, results/<data>/<name>/) its arms read, in order."""
        return tuple(dict.fromkeys(arm.experiment for arm in self.arms))

    def seeds_of(self, arm: Arm) -> int:
        return arm.seeds if arm.seeds is not None else self.seeds


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "C1",
        "fig1_convergence",
        (
            Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "1"}),
            Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "0.2,5"}, seeds=DEFAULT_SEEDS),  # the tuned baseline's grid
        ),
        text="BN trains faster and reaches higher test accuracy",
        seeds=HEADLINE_SEEDS,
        source="paper Fig. 1a",
        protocol="MLP 3x100 sigmoid, small-Gaussian init, batch 60, 50k steps, an evaluation every 500; BN before "
        "every sigmoid vs none; each arm also at its own best lr from a small grid (a tuned baseline)",
        rule="two parts, each decided on its own at lr_mult=1: trains faster (steps to the same seed's no-BN final "
        "accuracy, BN / no-BN, paired by seed: the ratio's interval below 1) and ends higher (final test accuracy, "
        "BN - no-BN, Welch: interval above 0); holds when both hold and no BN run diverges, does not hold when either "
        "does not; also reports steps to fixed targets and the same two parts against the tuned baseline",
        source_number="no numbers printed; Fig. 1a's axis runs 0.7-1.0 with BN above throughout",
    ),
    Claim(
        "C2",
        "fig1_distributions",
        (Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "1"}, probes=("activations",)),),
        text="BN keeps the distribution of a nonlinearity's input steady",
        seeds=HEADLINE_SEEDS,
        source="paper Fig. 1b,c",
        protocol="same runs as C1; per eval, 15/50/85th percentiles of the sigmoid input of fixed units of the last "
        "hidden layer, over a fixed test batch",
        rule="a drift score (how far the percentiles move after the first 10% of training, relative to their "
        "spread) lower with BN: BN - no-BN, Welch, interval below 0",
        source_number="no numbers printed; percentiles drift without BN, steady with BN (Fig. 1b,c)",
    ),
    Claim(
        "C3",
        "lr_multiplier",
        (
            Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "1"}),
            Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "5"}),
            Arm("lr_multiplier", {"bn": BOTH, "optim.lr_mult": "30"}),
        ),
        text="BN allows much higher learning rates and fewer steps",
        seeds=HEADLINE_SEEDS,
        source="paper Sec. 4.2, Fig. 3 table",
        protocol="base lr from C1, multipliers x1, x5, x30, with and without BN; the x1 and x5 runs are C1's",
        rule="all of: BN x5 reaches the same seed's no-BN x1 final accuracy in fewer steps (ratio BN x5 / no-BN x1, "
        "paired by seed, interval below 1; the paper's \"14x\" is 1/14); BN x5 and x30 train (no divergence); the "
        "unnormalized net at x30 diverges or ends lower than at x1 (Welch, interval below 0)",
        source_number="14x fewer steps (BN-x5: 2.1M steps vs Inception: 31.0M to reach 72.2%)",
    ),
    Claim(
        "C4",
        "poor_init",
        (
            Arm("poor_init", {"bn": "none,before,last"}, probes=("activations",)),
            Arm("poor_init_eps", {"bn": "last"}),  # the explanation of BN-last-only's failure, tested
            Arm("poor_init_width", {"bn": "none"}, probes=("activations",)),  # the notes' width: scale at init
        ),
        text="BN makes training insensitive to a bad initialization; BN on the last layer alone rescues it",
        source="the notes (7-layer CNN on CIFAR-10, W ~ U(-0.001, 0.001)); paper Sec. 3.3",
        protocol="7-layer CNN, W ~ U(-a, a), a = 0.001; BN nowhere / everywhere / only before the softmax; also log "
        "per-layer pre-activation magnitude at init; CIFAR-10 where it can be downloaded, Fashion-MNIST offline, "
        "a CPU-sized width/steps with the paper-sized setting as an override",
        rule="all of: no-BN at chance (final accuracy within +-0.02 of 1/classes, an equivalence test); BN everywhere "
        "and BN-last-only train and end more than 0.10 above chance (interval above); the no-BN pre-activation "
        "scale at init shrinks layer by layer, by at least 2 orders of magnitude; also reported: BN-last-only with "
        "eps = 1e-38 against the default eps, paired by seed (does eps keep the logits at chance?), and the "
        "notes-width CNN's per-layer scale at init beside the notes' 1e-11",
        source_number="no-BN stays at chance (notes 003)",
    ),
    Claim(
        "C5",
        "scale_invariance",
        (Arm("scale_invariance", {"bn": BOTH, "init.scale": "1e-4,1e-3,1e-2,1e-1,1.0"}, probes=("scale_invariance",)),),
        text="backprop through BN is invariant to weight scale; larger weights get smaller gradients",
        source="paper Sec. 3.3; the notes",
        protocol="identities checked numerically on random layers for a in {0.01, 0.1, 10, 100}; plus a sweep of "
        "init weight scale (1e-4..1e0) with and without BN",
        rule="identities hold to float tolerance; BN's final accuracy varies little across init scales, the "
        "baseline's a lot",
    ),
    Claim(
        "C6",
        "placement",
        (Arm("placement", {"bn": "none,before,after", "model.activation": "sigmoid,relu"}, probes=("activations",)),),
        text="where BN goes: before or after the nonlinearity",
        source='paper Sec. 3.2 (before); the notes (debated, "after" sometimes better)',
        protocol="before vs after vs none, for sigmoid and ReLU",
        rule="per activation, before - after in final test accuracy (Welch): before better (interval above 0), after "
        "better (below 0), or a tie (90% interval within +-0.005, two one-sided tests); the paper's placement holds when "
        "before is better for every activation and does not when after is better for one; also report how Gaussian "
        "(skew, kurtosis) the BN input is in each placement",
    ),
    Claim(
        "C7",
        "test_time_stats",
        (Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, probes=("test_time_stats",)),),
        text="inference must use population statistics, not the test batch's",
        source="paper Sec. 3.1, Alg. 2; the notes",
        protocol="one trained BN net evaluated with (a) exponential running averages, (b) Alg. 2 population "
        "statistics over the training set with m/(m-1), (c) the test batch's own statistics at test batch sizes "
        "1..1000",
        rule="(a) and (b) give predictions independent of test batch size and composition and agree within a small "
        "margin; (c) degrades at small test batches (batch 1 is meaningless)",
    ),
    Claim(
        "C8",
        "bias_redundancy",
        (Arm("scale_invariance", {"bn": "before", "init.scale": "1e-4,1e-3,1e-2,1e-1,1.0"}, probes=("scale_invariance",)),),
        text="a bias right before BN does nothing",
        source="paper Sec. 3.2; the notes",
        protocol="gradient of the loss w.r.t. that bias, and output change when it is perturbed",
        rule="both zero to float tolerance; the models drop that bias",
    ),
    Claim(
        "C9",
        "dropout",
        (
            Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "1"}),
            Arm("dropout", {"bn": BOTH, "model.dropout": "0.5"}),
            Arm("dropout_overfit", {"bn": BOTH, "model.dropout": "0.0,0.5"}),  # a regime where dropout helps no-BN
        ),
        text="BN regularizes and reduces the need for Dropout",
        source="paper Sec. 3.4, 4.2.1; the notes",
        protocol="BN and no-BN, each with dropout 0 and 0.5 (or a sweep)",
        rule="in a regime where dropout helps the unnormalized net (its gain's interval above 0; dropout_overfit: "
        "wider layers, 1,000 training examples), dropout's gain (final test accuracy with dropout 0.5 minus without, "
        "same seed) smaller with BN: the per-seed difference of gains, BN - no-BN, interval below 0; the Fig. 1 "
        "regime is reported beside it; report test accuracy and train-test gap",
    ),
    Claim(
        "C10",
        "saturation",
        (Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "1"}, probes=("saturation", "grad_norms")),),
        text="BN keeps sigmoids out of saturation and gradients from vanishing",
        source="paper Sec. 1; the notes",
        protocol="fraction of saturated sigmoid units per layer over training, gradient norm per layer (first vs last)",
        rule="both lower with BN (BN - no-BN, Welch, intervals below 0): the saturated fraction of sigmoid units and the "
        "first/last layer gradient imbalance |log10 ratio|",
    ),
    Claim(
        "C11",
        "insert_pretrained",
        (Arm("insert_pretrained", {}, probes=("insert_pretrained",)),),
        text="BN can be inserted into a trained network without changing its function, then fine-tuned",
        source="the notes (VGG-style)",
        protocol="train a net without BN; insert BN with gamma = sqrt(var + eps), beta = mean from training data; "
        "compare outputs; fine-tune",
        rule="outputs equal to float tolerance right after insertion; fine-tuning keeps or improves accuracy",
    ),
    Claim(
        "C12",
        "bn_math",
        (Arm("bn_math", {}, probes=("bn_math",)),),
        text="the hand-derived BN backward is right",
        source="the notes (closed-form dx, dgamma, dbeta)",
        protocol="a from-scratch BN (1d and 2d) with its own backward vs autograd and vs torch.nn.BatchNorm",
        rule="outputs, gradients and running statistics match; float64 gradcheck passes",
    ),
    Claim(
        "C13",
        "sigmoid_depth",
        (Arm("sigmoid_depth", {"bn": BOTH, "optim.lr_mult": "0.2,1,5"}, probes=("saturation", "grad_norms")),),
        text="BN makes deep sigmoid networks trainable",
        source="paper Fig. 3 (BN-x5-Sigmoid 69.8% vs Inception-sigmoid at chance)",
        protocol="deeper sigmoid MLP/CNN with and without BN",
        rule="each arm at its tuned lr_mult: BN trains (no divergence, more than 0.10 above chance) and no-BN is at "
        "chance (within +-0.02, equivalence) or more than 0.10 behind BN (Welch, interval above 0.10)",
        source_number="BN-x5-Sigmoid 69.8% best vs Inception with sigmoid at chance (ImageNet)",
    ),
    Claim(
        "C14",
        "noisy_bn",
        (
            Arm("fig1_mnist", {"bn": BOTH, "optim.lr_mult": "1"}, probes=("activations",)),
            Arm("noisy_bn", {"bn": "noisy"}, probes=("activations",)),
        ),
        text="BN still helps when its output distribution is made unstable on purpose",
        source="Santurkar et al. 2018, Sec. 2.1, Fig. 2",
        protocol="the Fig. 1 net; after each BN, per unit mu ~ U(-0.5, 0.5), sigma ~ U(1, 1.25) drawn at each step, "
        "then per example m ~ U(mu +- 0.1), s ~ N(sigma, 0.1): a <- s*a + m; no BN vs BN vs noisy BN; the "
        "activations probe records the percentiles with the noise applied",
        rule="all of: noisy BN trains (no divergence), about as well as BN (noisy - BN, Welch, interval above -0.02: a "
        "non-inferiority test) and better than no-BN (interval above 0); the drift score (as C2) shows whether the "
        "noise made the distribution unstable",
        source_number="noisy BN trains about as fast as BN and far better than no BN (VGG on CIFAR-10, Fig. 2)",
    ),
    Claim(
        "C15",
        "ics",
        (Arm("ics", {"bn": BOTH}, probes=("ics",)),),
        text="BN does not reduce internal covariate shift as Santurkar define it",
        source="Santurkar et al. 2018, Sec. 2.2, Def. 2.1",
        protocol="for a layer i: G = grad of W_i at step t; G' = same batch, after layers < i took their step; "
        "record ||G - G'|| and cos(G, G') per layer at evaluations, with and without BN",
        rule="report both with and without BN; the claim holds when BN's shift is similar or larger on both measures "
        "(non-inferiority, averaged over layers and evaluations): ||G - G'|| with BN at least 0.9x the baseline's "
        "(log ratio, Welch, interval above log 0.9) and cos(G, G') at most 0.05 above it (interval below 0.05)",
        source_number="with BN the shift is similar or larger (VGG on CIFAR-10 and deep linear networks)",
    ),
    Claim(
        "C16",
        "landscape",
        (Arm("ics", {"bn": BOTH}, probes=("landscape",)),),
        text="BN makes the loss and its gradient smoother",
        source="Santurkar et al. 2018, Sec. 3.2, Fig. 4",
        protocol="at evaluations along training, step lr x [0.5, 4] along -g: loss range, largest gradient change, "
        "largest gradient change / distance (effective smoothness beta)",
        rule="all three lower with BN (each averaged over the probed evaluations; BN - no-BN, Welch, intervals below 0)",
        source_number="loss range, gradient change and beta all markedly lower with BN (VGG on CIFAR-10, Fig. 4)",
    ),
    Claim(
        "C17",
        "batch_size",
        (Arm("batch_size", {"bn": "none,before,group,layer", "train.batch_size": "2,4,8,16,32,64,128,256"}),),
        text="BN weakens with small batches",
        source="Ioffe 2017 (Batch Renormalization); Wu & He 2018 (Group Normalization)",
        protocol="batch sizes 2..256 at a fixed number of epochs, no norm vs BN vs GroupNorm vs LayerNorm",
        rule="report accuracy vs batch size with and without BN; the claim holds when BN's lead over the "
        "unnormalized net (paired by seed) is smaller at the smallest batch than at the largest, interval below 0; "
        "the same number for GroupNorm and LayerNorm says whether a batch-independent norm weakens too",
        source_number="GroupNorm paper: BN's ImageNet error rises from 23.6% at 32 per GPU to 34.7% at 2; GN's stays "
        "near 24%",
    ),
    Claim(
        "C18",
        "bn_only",
        (Arm("bn_only", {"model": "mlp_deep,cnn_small", "train.trainable": "all,bn_only"}),),
        text="training only gamma and beta reaches far above chance",
        source="Frankle et al. 2020",
        protocol="freeze all other weights at init (the output layer too); a deeper MLP and the CNN; BN-only vs "
        "full training",
        rule="report accuracy vs chance and vs full training; holds when BN-only training ends more than 0.25 above "
        "chance in every model (one-sample interval above 0.25)",
        source_number="sufficiently deep ResNets reach 82% on CIFAR-10 (chance 10%) training only BN",
    ),
)
CLAIMS_BY_ID = {claim.id: claim for claim in CLAIMS}


def experiments_for(claim_ids: list[str]) -> list[str]:
    """The experiments that test these claims, each once, in catalogue order."""
    unknown = [c for c in claim_ids if c not in CLAIMS_BY_ID]
    if unknown:
        raise ValueError(f"unknown claim(s) {', '.join(unknown)}; choose from {', '.join(CLAIMS_BY_ID)}")
    wanted = {e for c in claim_ids for e in CLAIMS_BY_ID[c].experiments}
    return [e for e in dict.fromkeys(e for c in CLAIMS for e in c.experiments) if e in wanted]


INTRO = """\
# The claims this project reproduces

Each row is one claim about batch normalization (BN), where it comes from, the protocol that tests
it, and the rule that turns measured runs into a verdict. The project runs each one as a Hydra
experiment (`python train.py -m experiment=<experiment>`), over several seeds, and
`scripts/report.py` computes every verdict from the runs themselves (`analysis/verdicts.py`):
nothing is typed in by hand.

This file is generated from `analysis/claims.py` (`python -m analysis.claims --write`); edit the
registry there, not this file.

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
    arms = "; ".join(f"`{arm.describe()}`" for arm in claim.arms)
    seeds = f"{claim.seeds}" + (" (tuned grid 5)" if any(a.seeds for a in claim.arms) else "")
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
        "(`scripts/reproduce.py`). How `analysis/verdicts.py`\n(in the vocabulary of `analysis/rules.py`) makes "
        "each rule precise is in its docstrings and in the report's method section.\n",
        DATA_NOTE,
    ]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    if argv and argv != ["--write"]:
        print("error: usage: python -m analysis.claims [--write]", file=sys.stderr)
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
