"""Turn a results folder into REPORT.md and figures/*.png: every claim's verdict from its runs.

    python scripts/report.py results/fashion_mnist

Reads `<folder>/<experiment>/**` (the runs scripts/reproduce.py made) and, when present,
`<folder>/reproduce_log.jsonl` (commands and times). Running it twice gives the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
