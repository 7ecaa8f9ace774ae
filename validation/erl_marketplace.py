"""ERL's calibration on a marketplace (issue 27): ``python -m validation.erl_marketplace
[buyers sellers draws]`` (default 100,000 x 10,000, 300 assignments).

Buyers' potential outcomes are fixed: a baseline of 3 plus the mean of a seller-level
effect over the buyer's sellers plus buyer noise, and a heterogeneous slope beta_i
(0.5 + N(0, 0.5^2)) on the treated share of its sellers; sellers' lognormal popularity
(sigma 1.5) makes a few sellers carry thousands of buyers. Half of the sellers are
treated by complete randomization (the default design), redrawn each time. Printed: the
bias, sd, root mean se over sd and the coverage of the 95% interval, for ERL as
``estimate --method erl`` computes it (centred) and uncentred, with Monte Carlo errors.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from spillover import synth
from spillover.design import BipartiteDesign
from spillover.estimate.erl import ERLKernel, erl, joint_probabilities, unit_weights


def study(n_buyers: int = 100_000, n_sellers: int = 10_000, n_draws: int = 300, seed: int = 11) -> dict:
    """The study's rows, one per variant: bias, sd, se/sd, coverage and their Monte Carlo errors."""
    market = synth.marketplace(n_buyers, n_sellers, seed=seed)
    design = BipartiteDesign(market)
    randomization = design.randomization()
    started = time.perf_counter()
    kernel = ERLKernel.build(unit_weights(market, randomization.blocks), joint_probabilities(randomization))
    built = time.perf_counter() - started
    rng = np.random.default_rng(seed + 1)
    seller_level = rng.normal(size=market.n_treated_side)
    alpha = 3.0 + (market.incidence @ seller_level) / market.unit_degrees() + rng.normal(size=market.n_units)
    beta = 0.5 + 0.5 * rng.normal(size=market.n_units)
    tau = beta.mean()
    rows = {"centred": [], "uncentred": []}
    for draw in range(n_draws):
        x = kernel.weights @ (design.assign(seed=draw).arms >= 1).astype(float)
        y = alpha + beta * x
        for name, centre in (("centred", True), ("uncentred", False)):
            effect = erl(y, x, kernel, centre=centre)
            rows[name].append((effect.estimate, effect.se))
    out = {"buyers": n_buyers, "sellers": n_sellers, "draws": n_draws, "class pairs": kernel.pattern.nnz,
           "one-unit buyers": kernel.single, "build_s": round(built, 1)}
    for name, values in rows.items():
        estimate, se = np.array(values).T
        sd = estimate.std()
        covered = np.abs(estimate - tau) < 1.959964 * se
        out[name] = {"bias": estimate.mean() - tau, "bias_mc": sd / np.sqrt(n_draws), "sd": sd,
                     "se/sd": np.sqrt(np.nanmean(se**2)) / sd, "coverage": covered.mean(),
                     "coverage_mc": np.sqrt(covered.mean() * (1 - covered.mean()) / n_draws)}
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    result = study(*args)
    for key, value in result.items():
        print(key, {k: round(float(v), 4) for k, v in value.items()} if isinstance(value, dict) else value)
