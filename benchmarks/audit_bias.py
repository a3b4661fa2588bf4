"""Is the audit-slice accuracy estimate unbiased? Label-only estimates against the truth.

Replays each stream with an audit slice (``audit=0.2`` of a rate-0.1 budget unless
told) and compares the accuracy estimated from the labels alone (``audit``: the audit
slice; ``ipw``: the inverse-propensity-weighted estimate; ``queried``: the strategy's
own labels) with the true prequential accuracy on every arrival. For each run: the
bias in points and ``z = bias / SE`` with ``SE = sqrt(p (1 - p) / n)`` the binomial
standard error of an ``n``-label estimate; an unbiased estimate gives ``z`` with mean
near 0 and spread near 1 over many runs.

Streams: Elec2 (``STREAMAL_ELEC2`` or ``/work/shared/data/elec.csv``, skipped if
absent), drifting Agrawal and SEA (20,000 arrivals), river's Phishing and Bananas;
models logreg, GaussianNB and a Hoeffding tree; managers variable_threshold, random
and selective_sampling; seeds 1-3.

Usage::

    python benchmarks/audit_bias.py [--json out.json] [--seeds 1 2 3] [--audit 0.2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from streamal.offline.replay import ReplayConfig, run

ELEC = Path(os.environ.get("STREAMAL_ELEC2", "/work/shared/data/elec.csv"))
STREAMS = ["synth:Agrawal:n=20000", "synth:SEA:n=20000", "river:Phishing", "river:Bananas"]
MODELS = ("logreg", "gnb", "hoeffding")
MANAGERS = ("variable_threshold", "random", "selective_sampling")


def _z(estimate: float | None, truth: float, n: int) -> float | None:
    if estimate is None or n == 0:
        return None
    p = min(max(truth, 1e-3), 1 - 1e-3)
    return (estimate - truth) / math.sqrt(p * (1 - p) / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--audit", type=float, default=0.2)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--managers", nargs="+", default=list(MANAGERS))
    args = parser.parse_args()
    streams = ([str(ELEC)] if ELEC.is_file() else []) + STREAMS
    rows: list[dict[str, Any]] = []
    for source in streams:
        for model in args.models:
            for manager in args.managers:
                for seed in args.seeds:
                    r = run(
                        ReplayConfig(
                            source=source,
                            model=model,
                            budget=manager,
                            rate=args.rate,
                            audit=args.audit,
                            seed=seed,
                        )
                    )
                    e = r.estimates
                    row = {
                        "source": source,
                        "model": model,
                        "manager": manager,
                        "seed": seed,
                        "truth": r.accuracy,
                        **e,
                    }
                    for kind in ("audit", "ipw", "queried"):
                        est, n = e[f"{kind}_accuracy"], e[f"{kind}_labels"]
                        row[f"{kind}_bias"] = None if est is None else float(est) - r.accuracy
                        row[f"{kind}_z"] = _z(
                            est if isinstance(est, float) else None, r.accuracy, int(n or 0)
                        )
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print()
    for kind in ("audit", "ipw", "queried"):
        biases = [r[f"{kind}_bias"] for r in rows if r[f"{kind}_bias"] is not None]
        zs = [r[f"{kind}_z"] for r in rows if r[f"{kind}_z"] is not None]
        if not biases:
            print(f"{kind}: no estimate in any run")
            continue
        print(
            f"{kind}: {len(biases)}/{len(rows)} runs with an estimate; bias mean "
            f"{100 * statistics.mean(biases):+.2f} points (mean |bias| "
            f"{100 * statistics.mean(map(abs, biases)):.2f}); z mean "
            f"{statistics.mean(zs):+.2f}, sd {statistics.pstdev(zs):.2f}, "
            f"|z| > 2 in {sum(abs(z) > 2 for z in zs)}/{len(zs)}; above the truth in "
            f"{sum(b > 0 for b in biases)}/{len(biases)}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
