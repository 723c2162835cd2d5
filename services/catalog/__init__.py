"""Catalog service: categories, products, browsing and search, stock and reservations.

Decisions where DESIGN.md is silent:
- Slugs are generated from the name once and then stay (renaming keeps the URL); an admin may set one.
- Without ``q`` the default sort is ``newest``; with ``q`` it is ``relevance``. Ties break on id.
- An unknown ``category`` filter is a 404, not an empty page.
- A soft-deleted product keeps its SKU and slug (order history refers to them).
- Deleting a category refuses while it has (non-deleted) products or sub-categories.
- ``PATCH`` that changes stock emits ``product.updated`` and ``stock.changed``; the stock-delta
  route and reservations emit ``stock.changed`` only.
- ``seed`` writes no events unless ``--events``: it bootstraps a fresh catalog.
"""
