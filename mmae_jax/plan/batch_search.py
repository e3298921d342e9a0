"""The largest per-chip batch that fits, with few compiles (as MaxText's memory estimator searches).

From a starting batch, doubling (while it fits) or halving (while it does not) brackets the
largest batch that fits between a power-of-two multiple of the start that fits and its double
that does not; bisection then closes the bracket, unless only powers of two are wanted.
``plan --per-chip-batch auto`` runs the search once per remat policy: rematerialisation trades
compute for memory, so each policy has its own largest batch and its own step time.
"""

from __future__ import annotations

from typing import Callable, TypeVar

PlanT = TypeVar("PlanT")


def largest_fitting(plan_at: Callable[[int], PlanT], fits: Callable[[PlanT], bool], *, start: int = 8,
                    limit: int = 1024, exact: bool = True) -> tuple[PlanT | None, PlanT | None, list[int]]:
    """``(plan of the largest batch <= limit that fits, plan of the smallest tried that does not,
    batches tried in order)``.

    ``plan_at(batch)`` compiles one batch; ``fits(plan)`` says whether it fits. Fitting is taken
    to be monotone in the batch. ``exact=False`` stops at the bracket: the largest of the doubled
    or halved batches. The first element is None when even a batch of 1 does not fit, the second
    when ``limit`` fits.
    """
    tried: list[int] = []
    plans: dict[int, PlanT] = {}

    def fit(batch: int) -> bool:
        tried.append(batch)
        plans[batch] = plan_at(batch)
        return fits(plans[batch])

    start = max(1, min(start, limit))
    good, bad = 0, None
    if fit(start):
        good = start
        while good < limit:
            batch = min(good * 2, limit)
            if not fit(batch):
                bad = batch
                break
            good = batch
    else:
        bad = start
        while bad > 1:
            batch = bad // 2
            if fit(batch):
                good = batch
                break
            bad = batch
    while exact and good and bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        if fit(middle):
            good = middle
        else:
            bad = middle
    return plans.get(good), plans.get(bad) if bad is not None else None, tried
