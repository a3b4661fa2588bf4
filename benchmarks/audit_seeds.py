"""The audit estimate on Elec2 over 15 independent audit plans (seeds 1-15).

Logistic regression, rate 0.1, audit 0.2, managers variable_threshold and
selective_sampling; prints the mean error of the audit and IPW estimates against the
true prequential accuracy, and the mean z (error / binomial standard error of the
audit labels). Elec2 is read from ``STREAMAL_ELEC2`` or ``/work/shared/data/elec.csv``.

Usage::

    python benchmarks/audit_seeds.py LABEL
"""

from __future__ import annotations

import math
import os
import statistics
import sys

from streamal.offline.replay import ReplayConfig, run

ELEC = os.environ.get("STREAMAL_ELEC2", "/work/shared/data/elec.csv")


def main(label: str) -> None:
    for budget in ("variable_threshold", "selective_sampling"):
        zs: list[float] = []
        errors: list[float] = []
        ipw: list[float] = []
        for seed in range(1, 16):
            config = ReplayConfig(
                source=ELEC, model="logreg", budget=budget, rate=0.1, audit=0.2, seed=seed
            )
            r = run(config)
            e, truth = r.estimates, r.accuracy
            audit, n = float(e["audit_accuracy"] or 0.0), int(e["audit_labels"] or 0)
            errors.append(audit - truth)
            zs.append((audit - truth) / math.sqrt(truth * (1 - truth) / n))
            if e["ipw_accuracy"] is not None:
                ipw.append(float(e["ipw_accuracy"]) - truth)
        ipw_text = f"{100 * statistics.mean(ipw):+.2f}" if ipw else "-"
        print(
            f"{label} {budget} audit bias {100 * statistics.mean(errors):+.2f} pts, "
            f"z mean {statistics.mean(zs):+.2f} sd {statistics.pstdev(zs):.2f}, "
            f"above {sum(b > 0 for b in errors)}/15 | ipw runs {len(ipw)} bias {ipw_text}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "run")
