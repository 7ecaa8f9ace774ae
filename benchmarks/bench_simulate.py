"""Time ``spillover simulate``'s engine: 1,000 experiments x 3 designs on a 100,000-user
synthetic collaboration network, against a straightforward loop over experiments that
builds a pandas table and fits statsmodels' cluster-robust OLS each time (the tutorial's
estimator). The loop runs a sample of experiments and is scaled to 1,000.

Run by hand: ``python benchmarks/bench_simulate.py [--loop-sims 20]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from spillover import synth
from spillover.simulate import OutcomeModel, Study, compare_designs

DESIGNS = ("project", "component", "stratified-component")


def tutorial_loop(study: Study, design: str, model: OutcomeModel, n_sims: int, seed: int) -> np.ndarray:
    """One experiment at a time: randomize clusters, simulate outcomes, fit OLS in pandas."""
    rng = np.random.default_rng(seed)
    units = study.units(design)
    codes, ids = pd.factorize(units)
    estimates = []
    for _ in range(n_sims):
        arms = rng.permutation(np.arange(len(ids)) < len(ids) // 2).astype(float)
        z = arms[codes]
        y = (model.tau * z + model.gamma * model.tau * (study.adjacency @ z)
             + model.s_c * rng.standard_normal(study.component.max() + 1)[study.component]
             + model.s_a * rng.standard_normal(study.account.max() + 1)[study.account]
             + model.s_p * rng.standard_normal(study.project.max() + 1)[study.project])
        frame = pd.DataFrame({"y": y, "z": z, "cluster": codes})
        fit = smf.ols("y ~ z", data=frame).fit(cov_type="cluster", cov_kwds={"groups": frame["cluster"]})
        estimates.append(fit.params["z"])
    return np.asarray(estimates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--n-sims", type=int, default=1_000)
    parser.add_argument("--loop-sims", type=int, default=20)
    args = parser.parse_args()
    study = Study.from_network(synth.collaboration_network(args.users, seed=0))
    model = OutcomeModel()
    start = time.perf_counter()
    comparison = compare_designs(study, DESIGNS, model, n_sims=args.n_sims, seed=1)
    ours = time.perf_counter() - start
    print(f"spillover: {args.n_sims:,} experiments x {len(DESIGNS)} designs on {study.n_users:,} users: {ours:.1f} s")
    start = time.perf_counter()
    for design in DESIGNS:
        tutorial_loop(study, design, model, args.loop_sims, seed=2)
    per_sim = (time.perf_counter() - start) / (args.loop_sims * len(DESIGNS))
    loop_total = per_sim * args.n_sims * len(DESIGNS)
    print(f"loop with pandas + statsmodels: {per_sim * 1000:.0f} ms per experiment; "
          f"{loop_total:.0f} s for the same work (scaled from {args.loop_sims} per design)")
    print(f"speed-up: {loop_total / ours:.0f}x")
    print(comparison.to_frame().to_string(index=False))


if __name__ == "__main__":
    main()
