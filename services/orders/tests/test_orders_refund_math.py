"""The refund arithmetic of returns: exact to the minor unit, never above what was paid."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.orders.refunds import line_shares, units_refund

lines = st.lists(st.tuples(st.integers(0, 500_000), st.integers(1, 20)), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(lines=lines, extra=st.integers(0, 50_000), data=st.data())
def test_returns_never_refund_more_than_paid_and_a_full_return_refunds_it_exactly(
    lines: list[tuple[int, int]], extra: int, data: st.DataObject
) -> None:
    totals = [t for t, _ in lines]
    paid = sum(totals) + extra  # shipping and its tax on top of the lines
    shares = line_shares(totals, paid)
    assert sum(shares) == paid and all(s >= t for s, t in zip(shares, totals, strict=True))
    refunded = 0
    returned = [0] * len(lines)
    # returns of random lines and quantities, in a random order, until every unit is back
    while any(r < q for r, (_, q) in zip(returned, lines, strict=True)):
        i = data.draw(st.sampled_from([i for i, (_, q) in enumerate(lines) if returned[i] < q]))
        quantity = lines[i][1]
        n = data.draw(st.integers(1, quantity - returned[i]))
        amount = units_refund(share=shares[i], quantity=quantity, already=returned[i], returning=n)
        assert amount >= 0
        returned[i] += n
        refunded += amount
        assert refunded <= paid
    assert refunded == paid


def test_a_returned_unit_gets_its_share_of_the_discount_tax_and_shipping() -> None:
    # two lines: 2 x 10.00 with 2.00 off and 19% tax -> 21.42; 1 x 5.00 taxed -> 5.95; shipping 4.90
    shares = line_shares([2142, 595], 2142 + 595 + 490)
    assert shares == [2142 + 383, 595 + 107]
    first = units_refund(share=shares[0], quantity=2, already=0, returning=1)
    second = units_refund(share=shares[0], quantity=2, already=1, returning=1)
    assert (first, second) == (1262, 1263) and first + second == shares[0]
