"""Browsing products: filters, full-text search, deterministic sorting and pagination."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, get_args

import asyncpg
import orjson
from starlette.datastructures import QueryParams

from libs.common.errors import NotFound, Unprocessable
from services.catalog.cache import ResponseCache
from services.catalog.schemas import PRODUCT_FIELDS, SortKey
from services.catalog.service import SLUG_RE

# hostile or absurdly long queries stay cheap: only the first words count
MAX_QUERY_CHARS = 500


@dataclass(frozen=True)
class ProductQuery:
    category: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool | None = None
    q: str | None = None
    sort: str | None = None
    page: int = 1
    page_size: int = 20
    # (name, (value, ...)): a product matches when one live, active variant has one of the
    # values of every named option
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    facets: bool = False


MAX_OPTION_FILTERS = 3
MAX_OPTION_VALUES = 20


def option_filters(params: list[tuple[str, str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``option.<Name>=<value>`` query parameters (repeatable); a 422 naming the parameter when unusable."""
    wanted: dict[str, list[str]] = {}
    for key, value in params:
        if not key.startswith("option."):
            continue
        name, value = key.removeprefix("option.").strip(), value.strip()
        problem = None
        if not name or len(name) > 50 or "\x00" in name:
            problem = "an option name of 1 to 50 characters"
        elif not value or len(value) > 100 or "\x00" in value:
            problem = "a value of 1 to 100 characters"
        if problem:
            raise Unprocessable(
                f"{key[:60]!r} needs {problem}.",
                errors=[{"field": key[:60], "message": f"needs {problem}", "type": "value_error"}],
            )
        values = wanted.setdefault(name, [])
        if value not in values:
            values.append(value)
    if len(wanted) > MAX_OPTION_FILTERS or sum(map(len, wanted.values())) > MAX_OPTION_VALUES:
        raise Unprocessable(
            f"At most {MAX_OPTION_FILTERS} options and {MAX_OPTION_VALUES} values can be filtered on.",
            errors=[{"field": "option", "message": "too many option filters", "type": "too_many"}],
        )
    return tuple((name, tuple(values)) for name, values in sorted(wanted.items()))


_SORT_KEYS = frozenset(get_args(SortKey))
_FLAGS = {"true": True, "false": False, "1": True, "0": False}


class _NotPlain(Exception):
    """A parameter for the route to judge, not the guest fast path."""


def _number(value: str | None, *, default: int | None, least: int, most: int) -> int | None:
    if value is None:
        return default
    # ASCII digits read as pydantic reads them; a sign, a space or an underscore is the route's to judge
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(most))):
        raise _NotPlain
    number = int(value)
    if not least <= number <= most:
        raise _NotPlain
    return number


def _text(value: str | None, *, most: int) -> str | None:
    if value is not None and len(value) > most:
        raise _NotPlain
    return value


def _choice(value: str | None, choices: Collection[str]) -> str | None:
    if value is not None and value not in choices:
        raise _NotPlain
    return value


def plain_fields(params: QueryParams) -> dict[str, Any] | None:
    """The fields of the ``ProductQuery`` that ``GET /products`` reads from ``params``, or None.

    Read as the route reads them (the last of a repeated parameter, unknown ones ignored), for
    the guest browse answered before routing (api.GuestBrowse); the option filters are read
    apart (``option_filters``). A parameter this does not take as plainly valid (out of range,
    ``+5``, ``yes``) makes it None: the route then validates it, accepting what pydantic
    accepts and naming the field in its 422.
    """
    get = params.get
    try:
        in_stock, facets = _choice(get("in_stock"), _FLAGS), _choice(get("facets"), _FLAGS)
        return {
            "category": _text(get("category"), most=200),
            "price_min": _number(get("price_min"), default=None, least=0, most=2**63 - 1),
            "price_max": _number(get("price_max"), default=None, least=0, most=2**63 - 1),
            "in_stock": None if in_stock is None else _FLAGS[in_stock],
            "q": _text(get("q"), most=10_000),
            "sort": _choice(get("sort"), _SORT_KEYS),
            "page": _number(get("page"), default=1, least=1, most=100_000),
            "page_size": _number(get("page_size"), default=20, least=1, most=100),
            "facets": facets is not None and _FLAGS[facets],
        }
    except _NotPlain:
        return None


_TREE_SQL = (
    "WITH RECURSIVE tree(id) AS (SELECT id FROM categories WHERE {anchor} "
    "UNION SELECT c.id FROM categories c JOIN tree ON c.parent_id = tree.id) SELECT id FROM tree"
)


async def _category_tree(conn: Any, key: str) -> list[uuid.UUID]:
    """Ids of the category named by id or slug and of all its descendants (recursive CTE)."""
    try:
        return [r[0] for r in await conn.fetch(_TREE_SQL.format(anchor="id = $1"), uuid.UUID(key))]
    except ValueError:
        slug = key.strip().lower()
        if not SLUG_RE.match(slug):
            return []
        return [r[0] for r in await conn.fetch(_TREE_SQL.format(anchor="slug = $1"), slug)]


# sort name -> (key expressions, descending); the id always breaks ties so pages never overlap
SORTS: dict[str, tuple[tuple[str, str], bool]] = {
    "price_asc": (("price", "id"), False),
    "price_desc": (("price", "id"), True),
    "name": (("lower(name)", "id"), False),
    "newest": (("created_at", "id"), True),
}
# a page's live variants, as JSON built by PostgreSQL (20 small aggregates, no second round trip)
_VARIANTS = (
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', v.id, 'sku', v.sku, 'title', v.title, "
    "'options', v.options, 'price', v.price, 'compare_at_price', v.compare_at_price, 'stock', v.stock, "
    "'is_active', v.is_active, 'image_id', v.image_id, 'position', v.position) ORDER BY v.position, v.id), "
    "'[]'::jsonb)::text FROM variants v WHERE v.product_id = p.id AND v.retired_at IS NULL)"
)
# a page's uploaded images, URLs built as schemas.image_wire builds them
_MEDIA = (
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', i.id, "
    "'url', i.base_url || '/' || i.prefix || '/original.' || i.extension, 'alt', i.alt, "
    "'position', i.position, 'width', i.width, 'height', i.height, 'variant_id', i.variant_id, "
    "'thumbnails', jsonb_build_object('small', i.base_url || '/' || i.prefix || '/small.' || i.extension, "
    "'medium', i.base_url || '/' || i.prefix || '/medium.' || i.extension)) "
    "ORDER BY i.position, i.created_at, i.id), '[]'::jsonb)::text FROM product_images i "
    "WHERE i.product_id = p.id)"
)


def _utc_z(column: str) -> str:
    # as orjson writes an aware datetime with OPT_UTC_Z: microseconds only when there are some
    at = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"'\"' || to_char({at}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"|| CASE to_char({at}, 'US') WHEN '000000' THEN '' ELSE '.' || to_char({at}, 'US') END || 'Z\"'"
    )


# Each product of a page as the JSON text the API sends, written by PostgreSQL: the same keys in
# the same order and the same bytes as orjson wrote them from the row (to_json escapes text as
# orjson does, for every code point). Reading ~20 typed columns per row into Python objects, a
# dict per row and encoding it again took 270 CPU-us for a page of 20, where this takes 145.
_ITEM_JSON = {
    "id": "'\"' || p.id::text || '\"'",
    "name": "to_json(p.name)::text",
    "slug": "to_json(p.slug)::text",
    "description": "to_json(p.description)::text",
    "price": "p.price::text",
    "compare_at_price": "coalesce(p.compare_at_price::text, 'null')",
    "currency": "to_json(p.currency)::text",
    "sku": "to_json(p.sku)::text",
    "category_id": "coalesce('\"' || p.category_id::text || '\"', 'null')",
    "stock": "p.stock::text",
    "is_active": "p.is_active::text",
    "version": "p.version::text",
    "created_at": _utc_z("p.created_at"),
    "updated_at": _utc_z("p.updated_at"),
    # JSON columns go out as PostgreSQL wrote them
    "images": "p.images::text",
    "attributes": "p.attributes::text",
    "options": "p.options::text",
    "variants": _VARIANTS,
    "media": _MEDIA,
    "deleted": "'false'",  # visible products only
    "deleted_at": "'null'",
}
_ITEM_KEYS = [
    *(f for f in PRODUCT_FIELDS if f not in ("images", "attributes")),
    *("images", "attributes", "options", "variants", "media", "deleted", "deleted_at"),
]
_ITEM = (
    "'{' || "
    + " || ',' || ".join(f"'{orjson.dumps(key).decode()}:' || {_ITEM_JSON[key]}" for key in _ITEM_KEYS)
    + " || '}'"
)

# Facets of the filtered set in one statement: products per (direct) category, products per
# option value (their option_value_ids: the live, active variants' pairs), and the price range.
# The set is read once. The pairs are unnested in the select list (one set-returning call over
# the set, not a lateral function scan per product: half the time of the whole-catalog facets).
_FACETS = (
    "WITH f AS MATERIALIZED (SELECT category_id, price, option_value_ids FROM products WHERE {cond}), "
    "cats AS (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name, 'count', x.n) "
    "ORDER BY x.n DESC, c.name, c.id), '[]'::jsonb) AS j FROM (SELECT category_id, count(*) AS n FROM f "
    "WHERE category_id IS NOT NULL GROUP BY category_id) x JOIN categories c ON c.id = x.category_id), "
    "vals AS (SELECT op.name AS key, op.value, x.n FROM (SELECT pair, count(*) AS n FROM "
    "(SELECT unnest(option_value_ids) AS pair FROM f) u GROUP BY pair) x JOIN option_pairs op ON op.id = x.pair), "
    "opts AS (SELECT coalesce(jsonb_object_agg(key, vs), '{{}}'::jsonb) AS j FROM (SELECT key, "
    "jsonb_agg(jsonb_build_object('value', value, 'count', n) ORDER BY n DESC, value) AS vs FROM vals "
    "GROUP BY key) y), "
    "totals AS (SELECT count(*) AS total, min(price) AS price_min, max(price) AS price_max FROM f) "
    "SELECT totals.*, (SELECT j FROM cats)::text AS categories, (SELECT j FROM opts)::text AS options "
    "FROM totals"
)


async def list_products(
    *, conn: asyncpg.Connection, query: ProductQuery, cache: ResponseCache | None = None
) -> dict[str, Any]:
    """One page of visible products matching the filters, with the total over all pages.

    The hot read path of the shop, so it is one hand-written statement on the driver (the
    read pool, see app.py):
    the page's ids come from the sort key's covering index (index-only), only those rows
    are fetched in full, and the total is counted in the same round trip.
    """
    if query.price_min is not None and query.price_max is not None and query.price_min > query.price_max:
        raise Unprocessable(
            "price_min must not be greater than price_max.",
            errors=[{"field": "price_min", "message": "greater than price_max", "type": "value_error"}],
        )
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["is_active", "deleted_at IS NULL"]
    if query.category:
        # resolved first, so the planner sees concrete ids and can use the category index
        # kept beside the cached responses (same TTL, cleared by the same writes): one round trip
        # and a tenth of an uncached browse's CPU
        category_ids = cache.lookup(("tree", query.category)) if cache is not None else None
        if category_ids is None:
            generation = cache.generation if cache is not None else 0
            category_ids = await _category_tree(conn, query.category)
            if cache is not None and category_ids:  # an unknown one is asked again: it may be created
                cache.keep(("tree", query.category), category_ids, generation=generation)
        if not category_ids:
            raise NotFound(f"No category {query.category!r}.")
        where.append(f"category_id = ANY({arg(category_ids)}::uuid[])")
    if query.price_min is not None:
        where.append(f"price >= {arg(query.price_min)}")
    if query.price_max is not None:
        where.append(f"price <= {arg(query.price_max)}")
    if query.in_stock is not None:
        where.append("stock > 0" if query.in_stock else "stock = 0")
    if query.options:
        # each option: the product's option values overlap the wanted ones (GIN, visible products)
        for name, values in query.options:
            where.append(
                "option_value_ids && ARRAY(SELECT id FROM option_pairs "  # noqa: S608
                f"WHERE name = {arg(name)} AND value = ANY({arg(list(values))}::text[]))"
            )
        if len(query.options) > 1:
            # several options: one live, active variant must have them all, not one each
            per_name = [
                "("
                + " OR ".join(
                    f"v.options @> {arg(orjson.dumps({name: value}).decode())}::jsonb" for value in values
                )
                + ")"
                for name, values in query.options
            ]
            where.append(
                "EXISTS (SELECT 1 FROM variants v WHERE v.product_id = products.id AND v.retired_at IS NULL "  # noqa: S608
                "AND v.is_active AND " + " AND ".join(per_name) + ")"
            )
    text = (query.q or "").replace("\x00", " ").strip()[:MAX_QUERY_CHARS]
    sort = query.sort or ("relevance" if text else "newest")
    if text:
        tsquery = f"websearch_to_tsquery('english', {arg(text)})"
        where.append(f"search @@ {tsquery}")
    if sort == "relevance" and text:
        keys, directions = (f"ts_rank(search, {tsquery})", "id"), ("DESC", "ASC")
    else:
        # relevance without a query has nothing to rank: newest first
        keys, desc = SORTS["newest" if sort == "relevance" else sort]
        directions = ("DESC", "DESC") if desc else ("ASC", "ASC")
    # only fixed SQL fragments are interpolated; every value travels as a $n parameter
    cond = " AND ".join(where)
    limit, offset = arg(query.page_size), arg((query.page - 1) * query.page_size)
    # with facets the total comes from the facets' statement: the set is not counted twice
    total_sql = "SELECT NULL::bigint" if query.facets else f"SELECT count(*) FROM products WHERE {cond}"  # noqa: S608
    # the page hangs off the count (a left join): a page with no rows (nothing matches, or past the
    # last page: two in five price-range browses) still brings its total, with no second round trip
    sql = (
        f"WITH page AS (SELECT id AS pid, {keys[0]} AS k0, {keys[1]} AS k1 FROM products WHERE {cond} "  # noqa: S608
        f"ORDER BY 2 {directions[0]}, 3 {directions[1]} LIMIT {limit} OFFSET {offset}) "
        f"SELECT {_ITEM} AS item, counted.total "
        f"FROM ({total_sql}) AS counted(total) LEFT JOIN (page JOIN products p ON p.id = page.pid) ON true "
        f"ORDER BY page.k0 {directions[0]}, page.k1 {directions[1]}"
    )
    rows = await conn.fetch(sql, *args)
    counted = rows[0]["total"]
    if rows[0]["item"] is None:
        rows = []  # an empty page: its one row is the count's
    facets = None
    if query.facets:
        facet_row = await conn.fetchrow(_FACETS.format(cond=cond), *args[:-2])
        assert facet_row is not None
        total = int(facet_row["total"])
        facets = {
            "categories": orjson.Fragment(facet_row["categories"]),
            "options": orjson.Fragment(facet_row["options"]),
            "price": {"min": facet_row["price_min"], "max": facet_row["price_max"]},
        }
    else:
        total = int(counted)
    items = orjson.Fragment("[" + ",".join([r["item"] for r in rows]) + "]")
    page = {"items": items, "total": total, "page": query.page, "page_size": query.page_size}
    if facets is not None:
        page["facets"] = facets
    return page
