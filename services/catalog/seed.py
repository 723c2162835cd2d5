"""``python -m services.catalog seed --products N``: a realistic demo catalog, written in bulk.

Categories are upserted by slug (so a re-run reuses them); products go in with one
``COPY`` (10,000 in about a second). A catalog that already has products is left alone
unless ``--force`` adds N more. Seeding bootstraps a fresh catalog and writes no events
unless ``--events`` asks for category.created/product.created in the outbox.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from libs.common.db import migrate
from libs.contracts.catalog import EVENTS
from services.catalog.service import slugify
from services.catalog.settings import CatalogSettings
from services.catalog.variants import OPTION_PAIRS_SQL, OPTION_VALUES_SQL

# top level -> second level -> leaves (None: the second level is itself a leaf)
TREE: dict[str, dict[str, list[str] | None]] = {
    "Clothing": {
        "Men": ["Shirts", "Trousers", "Jackets"],
        "Women": ["Dresses", "Tops", "Skirts"],
        "Kids": None,
    },
    "Shoes": {"Running Shoes": None, "Boots": None, "Sandals": None, "Sneakers": None},
    "Electronics": {
        "Audio": ["Headphones", "Speakers"],
        "Computers": ["Laptops", "Keyboards", "Monitors"],
        "Phones": None,
        "Cameras": None,
    },
    "Home & Kitchen": {"Cookware": None, "Furniture": None, "Lighting": None, "Bedding": None},
    "Sports & Outdoors": {"Camping": None, "Cycling": None, "Fitness": None},
    "Books": {"Fiction": None, "Non-fiction": None, "Children's Books": None},
    "Toys & Games": {"Board Games": None, "Puzzles": None, "Building Sets": None},
    "Beauty": {"Skincare": None, "Fragrance": None},
}
NOUNS: dict[str, tuple[list[str], tuple[int, int]]] = {
    "Shirts": (["Oxford Shirt", "Linen Shirt", "Flannel Shirt", "Polo Shirt"], (1500, 8000)),
    "Trousers": (["Chino", "Jeans", "Cargo Trousers", "Joggers"], (2500, 12000)),
    "Jackets": (["Parka", "Denim Jacket", "Rain Jacket", "Bomber Jacket"], (5000, 30000)),
    "Dresses": (["Maxi Dress", "Wrap Dress", "Shirt Dress", "Slip Dress"], (3000, 20000)),
    "Tops": (["Blouse", "Tank Top", "Cardigan", "Sweater"], (1500, 9000)),
    "Skirts": (["Pleated Skirt", "Denim Skirt", "Midi Skirt"], (2000, 9000)),
    "Kids": (["Kids T-Shirt", "Kids Hoodie", "Romper", "Kids Raincoat"], (800, 5000)),
    "Running Shoes": (["Running Shoe", "Trail Running Shoe", "Racing Flat"], (5000, 20000)),
    "Boots": (["Chelsea Boot", "Hiking Boot", "Work Boot", "Ankle Boot"], (6000, 25000)),
    "Sandals": (["Sandal", "Flip-Flop", "Slide"], (1500, 8000)),
    "Sneakers": (["Sneaker", "High-Top Sneaker", "Canvas Shoe", "Skate Shoe"], (3000, 15000)),
    "Headphones": (["Wireless Headphones", "Earbuds", "Studio Headphones"], (2000, 40000)),
    "Speakers": (["Bluetooth Speaker", "Soundbar", "Bookshelf Speaker"], (3000, 60000)),
    "Laptops": (["Ultrabook", "Gaming Laptop", "Laptop"], (50000, 300000)),
    "Keyboards": (["Mechanical Keyboard", "Wireless Keyboard", "Ergonomic Keyboard"], (3000, 20000)),
    "Monitors": (["4K Monitor", "Curved Monitor", "Portable Monitor"], (15000, 90000)),
    "Phones": (["Smartphone", "Phone Case", "Charger"], (1000, 150000)),
    "Cameras": (["Mirrorless Camera", "Action Camera", "Camera Lens"], (20000, 250000)),
    "Cookware": (["Frying Pan", "Dutch Oven", "Saucepan", "Chef Knife"], (2000, 30000)),
    "Furniture": (["Armchair", "Coffee Table", "Bookshelf", "Desk"], (8000, 120000)),
    "Lighting": (["Desk Lamp", "Floor Lamp", "Pendant Light"], (2000, 25000)),
    "Bedding": (["Duvet Cover", "Pillow", "Sheet Set", "Blanket"], (2000, 15000)),
    "Camping": (["Tent", "Sleeping Bag", "Camping Stove", "Headlamp"], (1500, 60000)),
    "Cycling": (["Bike Helmet", "Bike Light", "Cycling Jersey", "Bike Lock"], (1500, 20000)),
    "Fitness": (["Yoga Mat", "Dumbbell Set", "Resistance Band", "Kettlebell"], (1000, 25000)),
    "Fiction": (["Novel", "Short Stories", "Mystery Novel"], (800, 3500)),
    "Non-fiction": (["Cookbook", "Biography", "Travel Guide", "History Book"], (1000, 5000)),
    "Children's Books": (["Picture Book", "Bedtime Stories", "Activity Book"], (500, 2500)),
    "Board Games": (["Strategy Game", "Party Game", "Family Board Game"], (1500, 9000)),
    "Puzzles": (["Jigsaw Puzzle", "Puzzle Cube", "3D Puzzle"], (800, 5000)),
    "Building Sets": (["Building Set", "Construction Kit", "Robot Kit"], (1500, 20000)),
    "Skincare": (["Moisturiser", "Face Serum", "Sunscreen", "Cleanser"], (800, 9000)),
    "Fragrance": (["Eau de Parfum", "Eau de Toilette", "Body Mist"], (2000, 15000)),
}
ADJECTIVES = [
    "Classic",
    "Modern",
    "Essential",
    "Premium",
    "Lightweight",
    "Vintage",
    "Everyday",
    "Urban",
    "Deluxe",
    "Compact",
    "Eco",
    "Pro",
    "Heritage",
    "Ultra",
    "Soft",
    "Rugged",
]
COLOURS = ["Black", "White", "Navy", "Red", "Olive", "Grey", "Sand", "Blue", "Green", "Burgundy"]
MATERIALS = [
    "cotton",
    "recycled polyester",
    "leather",
    "aluminium",
    "oak",
    "stainless steel",
    "wool",
    "bamboo",
]
BRANDS = ["Northwind", "Acme", "Lumen", "Fjord", "Solace", "Trailhead", "Brightside", "Kestrel"]
SIZES = ["XS", "S", "M", "L", "XL"]


def _dsn(settings: CatalogSettings) -> str:
    return settings.db_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _categories(conn: asyncpg.Connection, outbox: list[tuple[Any, ...]]) -> dict[str, uuid.UUID]:
    """Upsert the tree by slug; returns the leaf names' ids."""
    leaves: dict[str, uuid.UUID] = {}

    async def upsert(name: str, parent: uuid.UUID | None, position: int) -> uuid.UUID:
        slug = slugify(name, fallback="category")
        row = await conn.fetchrow(
            "INSERT INTO categories (id, name, slug, description, parent_id, position) VALUES ($1,$2,$3,$4,$5,$6) "
            "ON CONFLICT (slug) DO NOTHING RETURNING id, created_at",
            uuid.uuid4(),
            name,
            slug,
            f"Everything in {name.lower()}.",
            parent,
            position,
        )
        if row is None:
            return await conn.fetchval("SELECT id FROM categories WHERE slug = $1", slug)
        outbox.append(
            _event(
                "category.created",
                {
                    "id": row["id"],
                    "name": name,
                    "slug": slug,
                    "description": f"Everything in {name.lower()}.",
                    "image_url": None,
                    "parent_id": parent,
                    "position": position,
                    "product_count": 0,
                    "created_at": row["created_at"],
                    "updated_at": row["created_at"],
                },
            )
        )
        return row["id"]

    for i, (top, subs) in enumerate(TREE.items()):
        top_id = await upsert(top, None, i)
        for j, (sub, leaf_names) in enumerate(subs.items()):
            sub_id = await upsert(sub, top_id, j)
            if leaf_names is None:
                leaves[sub] = sub_id
            for k, leaf in enumerate(leaf_names or []):
                leaves[leaf] = await upsert(leaf, sub_id, k)
    return leaves


def _event(kind: str, data: dict[str, Any]) -> tuple[Any, ...]:
    env = EVENTS.envelope(kind, data)
    return (env.id, env.type, env.to_bytes().decode())


APPAREL = ("Shirts", "Trousers", "Jackets", "Dresses", "Tops", "Skirts", "Kids")


def _variants(
    product_id: uuid.UUID,
    sku: str,
    price: int,
    compare_at: int | None,
    stock: int,
    *,
    apparel: bool,
    count: int,
    rng: random.Random,
    created: datetime,
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """Options and variant rows: sizes for apparel, colours otherwise; one default variant for count 1.

    Bigger sizes cost a little more; the product's stock is spread over its variants.
    """
    if count <= 1:
        return [], [
            (
                uuid.uuid4(),
                product_id,
                sku,
                "Default",
                "{}",
                price,
                compare_at,
                stock,
                True,
                0,
                created,
                created,
            )
        ]
    name, pool = ("Size", SIZES) if apparel else ("Colour", COLOURS)
    values = pool[:count] if apparel else rng.sample(pool, min(count, len(pool)))
    rows = []
    for position, value in enumerate(values):
        share = stock // len(values) + (1 if position < stock % len(values) else 0)
        step = position * 200 if apparel else 0
        rows.append(
            (
                uuid.uuid4(),
                product_id,
                f"{sku}-{value.upper()}",
                value,
                json.dumps({name: value}),
                price + step,
                None if compare_at is None else compare_at + step,
                share,
                True,
                position,
                created,
                created,
            )
        )
    return [{"name": name, "values": list(values)}], rows


def _products(
    n: int, offset: int, leaves: dict[str, uuid.UUID], rng: random.Random, variants_per_product: int | None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    now = datetime.now(UTC)
    names = list(leaves)
    rows = []
    variant_rows: list[tuple[Any, ...]] = []
    for i in range(offset, offset + n):
        leaf = names[i % len(names)]
        nouns, (low, high) = NOUNS[leaf]
        noun = rng.choice(nouns)
        colour, material, brand = rng.choice(COLOURS), rng.choice(MATERIALS), rng.choice(BRANDS)
        name = f"{brand} {rng.choice(ADJECTIVES)} {colour} {noun}"
        sku = f"{slugify(leaf, fallback='x')[:4].upper()}-{i:06d}"
        # prices cluster on .99 endings like a real shop's, so many products share a price
        price = rng.randrange(low // 100, high // 100 + 1) * 100 - 1
        compare_at = price + rng.randrange(5, 40) * 100 if rng.random() < 0.2 else None
        stock = 0 if rng.random() < 0.08 else rng.randrange(1, 250)
        attributes: dict[str, Any] = {"colour": colour.lower(), "material": material, "brand": brand}
        apparel = leaf in APPAREL
        if apparel and variants_per_product is None:
            attributes["size"] = rng.choice(SIZES)
        description = (
            f"A {material} {noun.lower()} from {brand} in {colour.lower()}. "
            f"{rng.choice(['Built to last.', 'Designed for everyday use.', 'A customer favourite.', 'Limited edition.'])}"
        )
        created = now - timedelta(seconds=rng.randrange(0, 365 * 86400))
        product_id = uuid.uuid4()
        # by default apparel comes in three sizes and everything else in one variant
        count = variants_per_product if variants_per_product is not None else (3 if apparel else 1)
        options, variants = _variants(
            product_id, sku, price, compare_at, stock, apparel=apparel, count=count, rng=rng, created=created
        )
        variant_rows += variants
        rows.append(
            (
                product_id,
                name,
                # the SKU slugified too: Non-fiction's "NON--000389" made a slug with "--", which
                # GET /products/{slug} refuses as no slug (its page answered 404)
                f"{slugify(name, fallback='product')}-{slugify(sku, fallback='x')}",
                description,
                price,
                compare_at,
                "USD",
                sku,
                leaves[leaf],
                json.dumps([f"https://img.example.com/p/{sku}.jpg"]),
                stock,
                json.dumps(attributes),
                json.dumps(options),
                rng.random() > 0.02,
                1,
                created,
                created,
            )
        )
    return rows, variant_rows


PRODUCT_COLUMNS = [
    "id",
    "name",
    "slug",
    "description",
    "price",
    "compare_at_price",
    "currency",
    "sku",
    "category_id",
    "images",
    "stock",
    "attributes",
    "options",
    "is_active",
    "version",
    "created_at",
    "updated_at",
]
VARIANT_COLUMNS = [
    "id",
    "product_id",
    "sku",
    "title",
    "options",
    "price",
    "compare_at_price",
    "stock",
    "is_active",
    "position",
    "created_at",
    "updated_at",
]


async def seed(
    settings: CatalogSettings,
    *,
    products: int,
    force: bool = False,
    with_events: bool = False,
    seed_value: int = 42,
    variants_per_product: int | None = None,
) -> int:
    """Create the demo catalog; returns how many products were written."""
    from services.catalog.app import MIGRATIONS

    await migrate(settings.db_url, MIGRATIONS)
    conn = await asyncpg.connect(_dsn(settings), timeout=10)
    try:
        existing = await conn.fetchval("SELECT count(*) FROM products")
        if existing and not force:
            return 0  # the caller says what to do about it: its own options differ
        outbox: list[tuple[Any, ...]] = []
        async with conn.transaction():
            leaves = await _categories(conn, outbox)
            rows, variant_rows = _products(
                products, existing, leaves, random.Random(seed_value + existing), variants_per_product
            )
            await conn.copy_records_to_table("products", records=rows, columns=PRODUCT_COLUMNS)
            await conn.copy_records_to_table("variants", records=variant_rows, columns=VARIANT_COLUMNS)
            if with_events:
                cols = {c: i for i, c in enumerate(PRODUCT_COLUMNS)}
                vcols = {c: i for i, c in enumerate(VARIANT_COLUMNS)}
                by_product: dict[uuid.UUID, list[dict[str, Any]]] = {}
                for v in variant_rows:
                    wire = {
                        c: v[vcols[c]]
                        for c in VARIANT_COLUMNS
                        if c not in ("product_id", "created_at", "updated_at")
                    }
                    wire["options"] = json.loads(wire["options"])
                    by_product.setdefault(v[vcols["product_id"]], []).append(wire)
                for r in rows:
                    data = {c: r[i] for c, i in cols.items()}
                    data["images"], data["attributes"], data["options"] = (
                        json.loads(r[cols["images"]]),
                        json.loads(r[cols["attributes"]]),
                        json.loads(r[cols["options"]]),
                    )
                    data.update(deleted=False, deleted_at=None, variants=by_product[r[cols["id"]]])
                    outbox.append(_event("product.created", data))
                await conn.copy_records_to_table(
                    "outbox", records=outbox, columns=["id", "routing_key", "payload"]
                )
        # fresh statistics (and a vacuumed visibility map) so the planner picks the indexes at once
        await conn.execute(OPTION_PAIRS_SQL.format(scope=""))
        await conn.execute(OPTION_VALUES_SQL.format(where=""))
        await conn.execute("VACUUM ANALYZE products")
        await conn.execute("VACUUM ANALYZE variants")
    finally:
        await conn.close()
    print(f"seeded {products} products in {len(leaves)} leaf categories")
    return products


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--products", type=int, default=500, help="how many products (default 500)")
    parser.add_argument("--force", action="store_true", help="add products even if some exist")
    parser.add_argument("--events", action="store_true", help="also write created events to the outbox")
    parser.add_argument(
        "--variants",
        type=int,
        default=None,
        help="variants per product (default: 3 sizes for apparel, else 1)",
    )


async def run(settings: CatalogSettings, args: argparse.Namespace) -> None:
    written = await seed(
        settings,
        products=args.products,
        force=args.force,
        with_events=args.events,
        variants_per_product=args.variants,
    )
    if written == 0 and args.products > 0:
        print(f"the catalog already has products: nothing seeded; --force adds {args.products} more")
