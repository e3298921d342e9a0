"""The largest per-chip batch that fits, with few compiles (as MaxText's memory estimator searches).

Doubling from 1 finds the first batch that does not fit; bisection between the last batch that
fits and that one finds the largest that does. ``plan --per-chip-batch auto`` runs the search
once per remat policy: rematerialisation trades compute for memory, so each policy has its own
largest batch and its own step time.
"""

from __future__ import annotations

from typing import Callable, TypeVar

PlanT = TypeVar("PlanT")


def largest_fitting(plan_at: Callable[[int], PlanT], fits: Callable[[PlanT], bool], *, limit: int = 1024,
                    ) -> tuple[PlanT | None, PlanT | None, list[int]]:
    """``(plan of the largest batch <= limit that fits, plan of the smallest that does not, batches tried)``.

    ``plan_at(batch)`` compiles one batch; ``fits(plan)`` says whether it fits. Fitting is
    taken to be monotone in the batch. The first element is None when even a batch of 1 does
    not fit, the second when ``limit`` fits.
    """
    tried: list[int] = []
    plans: dict[int, PlanT] = {}

    def fit(batch: int) -> bool:
        tried.append(batch)
        plans[batch] = plan_at(batch)
        return fits(plans[batch])

    good, bad = 0, None
    batch = 1
    while batch <= limit:
        if not fit(batch):
            bad = batch
            break
        good = batch
        batch *= 2
    if bad is None and good < limit and fit(limit):     # the doubling stepped over the limit
        good = limit
    elif bad is None and good < limit:
        bad = limit
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        if fit(middle):
            good = middle
        else:
            bad = middle
    return plans.get(good), plans.get(bad) if bad is not None else None, tried
