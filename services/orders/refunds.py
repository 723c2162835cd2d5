"""How much of what was paid a returned unit gets back: exact to the minor unit, never more than paid.

Each line's share of the order's total is its breakdown total (its discount and tax included) plus
its part of whatever the order charged beyond its lines (shipping and its tax), spread over the lines
by their totals with the largest remainders getting the odd units, so the shares add up to the total.
Within a line, the first ``n`` units returned get ``floor(share * n / quantity)``: a return of ``q``
more units after ``r`` gets ``floor(share * (r + q) / quantity) - floor(share * r / quantity)``. The
amounts of a line's returns therefore add up to its share exactly when every unit is back, and the
refunds of an order never exceed what was paid.
"""

from __future__ import annotations

from collections.abc import Sequence


def line_shares(line_totals: Sequence[int], total: int) -> list[int]:
    """Each line's part of ``total``: its own total plus its part of the rest (largest remainder)."""
    if not line_totals:
        return []
    rest = total - sum(line_totals)
    if rest < 0:  # not expected (a breakdown's lines are inside its total): then the total is spread
        return _spread(line_totals, total)
    return [t + extra for t, extra in zip(line_totals, _spread(line_totals, rest), strict=True)]


def _spread(weights: Sequence[int], amount: int) -> list[int]:
    """``amount`` split in proportion to ``weights`` (evenly when they are all zero), exactly."""
    basis = list(weights) if sum(weights) > 0 else [1] * len(weights)
    whole = sum(basis)
    parts = [amount * w // whole for w in basis]
    left = amount - sum(parts)
    # the odd units go to the largest remainders; ties to the earlier line, so it is deterministic
    order = sorted(range(len(basis)), key=lambda i: (-(amount * basis[i] % whole), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def units_refund(*, share: int, quantity: int, already: int, returning: int) -> int:
    """What ``returning`` more units of a line of ``quantity`` get back after ``already`` were."""
    if not 0 <= already <= already + returning <= quantity:
        raise ValueError("more units than the line holds")
    return share * (already + returning) // quantity - share * already // quantity
