"""Fit the region score's weights on one benchmark seed (the tuning seed, 1 by default)
and print them as a ``DEFAULT_WEIGHTS`` literal; report on another seed with run.py.

    python benchmarks/detection/tune.py --preset full --seed 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import PRESETS, load
from evaluate import audit, region_table
from metrics import precision_at_k

from segaudit.core.region_score import FEATURES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="full", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    bench = load(PRESETS[args.preset], args.seed)
    _, outcomes = audit(bench)
    x, real, _ = region_table(outcomes, bench.num_classes)
    print(f"{real.size} regions, {real.sum()} real ({real.mean():.1%})")
    for j, name in enumerate(FEATURES):
        print(f"  {name:24s} real {x[real, j].mean():7.3f}   not {x[~real, j].mean():7.3f}")
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, real)
    weights = dict(zip(FEATURES, (round(float(w), 3) for w in model.coef_[0]), strict=True))
    weights["bias"] = round(float(model.intercept_[0]), 3)
    print("DEFAULT_WEIGHTS =", weights)
    score = model.decision_function(x)
    for k in (50, 100):
        print(
            f"precision@{k}: fitted {precision_at_k(score, real, k):.2f}  "
            f"area {precision_at_k(x[:, 0], real, k):.2f}"
        )


if __name__ == "__main__":
    main()
