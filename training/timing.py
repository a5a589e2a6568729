"""How fast this machine trains, against the machine that made the committed records: a calibration.

    python -m training.timing                 # this machine's rate, and the reference's
    python -m training.timing --write         # store this machine's rate as the reference (results/calibration.json):
                                              # the median of 15 calibrations a few seconds apart

The calibration times the step that most of the catalogue's time goes to (docs/speed.md): the Fig. 1
network (784-100-100-100-10, BN before each sigmoid, batch 60, plain SGD) on random data in memory,
on one thread, as scripts/reproduce.py runs every job. It takes two to four seconds: a warm-up, then
the best of eight rounds of 100 steps, each timed by the thread's own CPU time (time.thread_time), not
the clock, so that other processes taking turns on the cores count little; the best, because other
work on the machine (sharing caches and cores) only ever slows a round down. Even so, on the 2-core
development machine, while other work kept its load average above 3, calibrations over half an hour
gave 624 to 1,087 steps/s: one calibration can be a third off, and so can the estimate built on it.
The stored reference is the median of 15 (`--write`).
scripts/reproduce.py --dry-run scales the committed records' times by the reference's rate over this
machine's. One number cannot say everything about two machines (memory, caches, other work, a GPU),
so the result is an estimate and says so.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION_FILE = ROOT / "results" / "calibration.json"
WARMUP_STEPS, ROUND_STEPS, ROUNDS = 50, 100, 8


def calibrate(round_steps: int = ROUND_STEPS, rounds: int = ROUNDS) -> float:
    """Steps per second of the Fig. 1 BN network's training step on this CPU, one thread: the best round."""
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        layers, width = [], 784
        for _ in range(3):
            layers += [nn.Linear(width, 100), nn.BatchNorm1d(100), nn.Sigmoid()]
            width = 100
        model = nn.Sequential(*layers, nn.Linear(width, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        inputs = torch.randn(round_steps, 60, 784, generator=generator)
        labels = torch.randint(0, 10, (round_steps, 60), generator=generator)

        def steps(n: int) -> None:
            for i in range(n):
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(inputs[i % round_steps]), labels[i % round_steps]).backward()
                optimizer.step()

        steps(WARMUP_STEPS)
        best = float("inf")
        for _ in range(rounds):
            started = time.thread_time()
            steps(round_steps)
            best = min(best, time.thread_time() - started)
        return round_steps / best
    finally:
        torch.set_num_threads(threads)


def reference(path: Path = CALIBRATION_FILE) -> dict | None:
    """The calibration stored beside the committed records, or None."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored.get("steps_per_s"), (int, float)) and stored["steps_per_s"] > 0 else None


def load_average() -> float | None:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def measurement(rates: list[float], loads: list[float | None]) -> dict:
    """A reference calibration as stored: the median of several, their range, and where, when and with
    what they were measured."""
    import statistics

    import torch

    from training.record import cpu_model

    known = [load for load in loads if load is not None]
    return {
        "steps_per_s": round(statistics.median(rates), 1),
        "of": f"the median of {len(rates)} calibrations, {min(rates):.0f} to {max(rates):.0f} steps/s",
        "what": f"the Fig. 1 BN network's training step (784-100-100-100-10, batch 60, SGD) on random data, one "
                f"thread, the best of {ROUNDS} rounds of {ROUND_STEPS} steps timed by the thread's CPU time, after "
                f"{WARMUP_STEPS} warm-up steps (python -m training.timing)",
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": f"{min(known):.1f} to {max(known):.1f}" if known else None,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.timing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help=f"store this machine's rate in {CALIBRATION_FILE.relative_to(ROOT)} (the median of 15)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.write:
        rates, loads = [], []
        for number in range(15):
            time.sleep(3 if number else 0)  # apart, so that a passing burst of other work weighs on few of them
            loads.append(load_average())
            rates.append(calibrate())
            print(f"this machine: {rates[-1]:.0f} steps/s (load average {loads[-1]})", flush=True)
        stored = measurement(rates, loads)
        CALIBRATION_FILE.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"wrote {CALIBRATION_FILE}: {stored['steps_per_s']:.0f} steps/s, {stored['of']}")
        return 0
    rate = calibrate()
    print(f"this machine: {rate:.0f} steps/s (the Fig. 1 BN network on one thread)")
    stored = reference()
    if stored:
        print(f"reference: {stored['steps_per_s']:.0f} steps/s on {stored.get('cpu')} ({stored.get('measured_at')}): "
              f"this machine trains {rate / stored['steps_per_s']:.2f}x as fast")
    return 0


if __name__ == "__main__":
    sys.exit(main())
