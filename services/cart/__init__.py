"""Cart service: per-user carts and wishlists, kept current by a product read-model fed by catalog events.

Decisions where DESIGN.md is silent:
- Every cart-changing route answers with the whole cart after the change, so a frontend never
  needs a second request. ``POST /cart`` is 201 when it created a new line, 200 when it
  increased an existing one.
- A cart holds one currency: adding a product priced in another currency is a 409.
  An empty cart reports ``DEFAULT_CURRENCY``.
- ``item_count`` is the number of units (sum of quantities); ``subtotal`` sums the lines that
  can still be bought (``unavailable`` lines are shown with their line total but left out).
- ``unit_price`` is the price now (from the read-model); ``added_unit_price`` is the price when
  the line was first added, so a frontend can say "the price changed".
- A line is ``unavailable`` when its product is inactive or deleted, ``out_of_stock`` when the
  stock the read-model knows is 0 (the wishlist's word too), ``insufficient_stock`` when it is
  below the quantity, else ``available``.
- The read-model keeps one ``version`` per product (catalog raises it on every change, stock
  included); an event is applied only when its version is higher, so a stale or repeated
  event never overwrites newer data.
- A product the read-model has never seen is fetched once from catalog and stored; catalog's
  404 means "no such product".
- ``POST /wishlist`` is 201 for a new entry and 200 with the existing entry when the product
  is already wishlisted.
"""
