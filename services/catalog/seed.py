"""``python -m services.catalog seed --products N``: a realistic demo catalog, written in bulk.

Categories are upserted by slug (so a re-run reuses them); products, their variants (sizes and
colours as a shop sells them) and their generated pictures go in with one ``COPY`` each (10,000
products in a few seconds; pictures are drawn once per kind and colour, and stored many at a time). A catalog that already has products is left alone
unless ``--force`` adds N more. Seeding bootstraps a fresh catalog and writes no events
unless ``--events`` asks for category.created/product.created in the outbox.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
from PIL import Image, ImageDraw, ImageFont

from libs.common.db import migrate
from libs.contracts.catalog import EVENTS
from services.catalog import media
from services.catalog.schemas import image_wire
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
SHOES = ("Running Shoes", "Boots", "Sandals", "Sneakers")
SHOE_SIZES = ["38", "39", "40", "41", "42", "43", "44", "45", "46"]
KIDS_SIZES = ["2-3Y", "4-5Y", "6-7Y", "8-9Y", "10-11Y"]
# things a shop sells in several colours (and nothing else to choose)
COLOURED = (
    "Headphones",
    "Speakers",
    "Keyboards",
    "Phones",
    "Cookware",
    "Furniture",
    "Lighting",
    "Bedding",
    "Camping",
    "Cycling",
    "Fitness",
)
RGB = {
    "Black": (28, 28, 30),
    "White": (236, 236, 232),
    "Navy": (30, 44, 84),
    "Red": (178, 34, 40),
    "Olive": (98, 104, 52),
    "Grey": (128, 130, 134),
    "Sand": (204, 184, 146),
    "Blue": (46, 104, 182),
    "Green": (46, 128, 74),
    "Burgundy": (110, 28, 46),
}


def _options(leaf: str, colour: str, count: int | None, rng: random.Random) -> list[tuple[str, list[str]]]:
    """The options a product of this leaf is sold in, as a shop would list them.

    ``count`` (the benchmark's fixed shape) gives exactly that many variants in one option: sizes for
    apparel, colours otherwise. By default apparel and shoes come in a run of sizes, often in
    two or three colours too; coloured goods often in colours; the rest in one variant.
    """
    if count is not None:
        if count <= 1:
            return []
        if leaf in APPAREL:
            return [("Size", SIZES[:count])]
        return [("Colour", rng.sample(COLOURS, min(count, len(COLOURS))))]
    colours = [colour, *rng.sample([c for c in COLOURS if c != colour], 2)][: rng.choice((1, 1, 2, 3))]
    if leaf in APPAREL or leaf in SHOES:
        pool = KIDS_SIZES if leaf == "Kids" else SHOE_SIZES if leaf in SHOES else SIZES
        width = rng.randrange(3, min(5, len(pool)) + 1)
        first = rng.randrange(0, len(pool) - width + 1)
        sizes = pool[first : first + width]
        return [("Size", sizes), ("Colour", colours)] if len(colours) > 1 else [("Size", sizes)]
    if leaf in COLOURED and len(colours) > 1:
        return [("Colour", colours)]
    return []


def _variants(
    product_id: uuid.UUID,
    sku: str,
    price: int,
    compare_at: int | None,
    stock: int,
    options: list[tuple[str, list[str]]],
    *,
    rng: random.Random,
    created: datetime,
) -> list[tuple[Any, ...]]:
    """One variant per combination of the options' values (one ``Default`` without options).

    Sizes past the middle of the run cost a little more; the product's stock is spread over its
    variants unevenly, and now and then one size or colour is sold out.
    """
    combos: list[dict[str, str]] = [{}]
    for name, values in options:
        combos = [{**c, name: v} for c in combos for v in values]
    sizes = next((values for name, values in options if name == "Size"), [])
    weights = [0 if len(combos) > 1 and rng.random() < 0.1 else rng.randrange(1, 6) for _ in combos]
    if not any(weights):
        weights[0] = 1
    total = sum(weights)
    shares = [stock * w // total for w in weights]
    # what integer division left goes to the first variant that sells
    shares[next(i for i, w in enumerate(weights) if w)] += stock - sum(shares)
    rows = []
    for position, (combo, share) in enumerate(zip(combos, shares, strict=True)):
        size = combo.get("Size")
        step = 200 if size is not None and sizes.index(size) > len(sizes) // 2 else 0
        suffix = "".join(f"-{v.upper()[:4]}" for v in combo.values())
        rows.append(
            (
                uuid.uuid4(),
                product_id,
                f"{sku}{suffix}",
                " / ".join(combo.values()) or "Default",
                json.dumps(combo),
                price + step,
                None if compare_at is None else compare_at + step,
                share,
                True,
                position,
                None,  # image_id: the colour's picture, when pictures are made
                created,
                created,
            )
        )
    return rows


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
        options = _options(leaf, colour, variants_per_product, rng)
        in_colours = any(name == "Colour" for name, _ in options)
        # a product sold in several colours is not named after one
        name = f"{brand} {rng.choice(ADJECTIVES)} {'' if in_colours else colour + ' '}{noun}"
        sku = f"{slugify(leaf, fallback='x')[:4].upper()}-{i:06d}"
        # prices cluster on .99 endings like a real shop's, so many products share a price
        price = rng.randrange(low // 100, high // 100 + 1) * 100 - 1
        compare_at = price + rng.randrange(5, 40) * 100 if rng.random() < 0.2 else None
        stock = 0 if rng.random() < 0.08 else rng.randrange(1, 250)
        attributes: dict[str, Any] = {"colour": colour.lower(), "material": material, "brand": brand}
        description = (
            f"A {material} {noun.lower()} from {brand}"
            f"{' in ' + ', '.join(v.lower() for v in options[-1][1]) if in_colours else ' in ' + colour.lower()}. "
            f"{rng.choice(['Built to last.', 'Designed for everyday use.', 'A customer favourite.', 'Limited edition.'])}"
        )
        created = now - timedelta(seconds=rng.randrange(0, 365 * 86400))
        product_id = uuid.uuid4()
        variant_rows += _variants(
            product_id, sku, price, compare_at, stock, options, rng=rng, created=created
        )
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
                json.dumps([{"name": name, "values": values} for name, values in options]),
                rng.random() > 0.02,
                1,
                created,
                created,
            )
        )
    return rows, variant_rows


class Placeholders:
    """Generated product pictures: the product's kind on its colour, drawn once per (kind, colour).

    Encoded directly (no optimisation pass): they are the seed's own, so nothing needs cleaning, and
    a thousand products take a second, not a minute.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[str, str], media.Processed] = {}
        self._font = ImageFont.load_default(size=44)
        self._small = ImageFont.load_default(size=28)

    def _encode(self, image: Image.Image) -> bytes:
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=82)
        return out.getvalue()

    def get(self, kind: str, colour: str) -> media.Processed:
        key = (kind, colour)
        if key not in self._made:
            rgb = RGB[colour]
            ink = (20, 20, 20) if sum(rgb) > 450 else (245, 245, 245)
            side = media.THUMBNAILS["medium"]  # the original is the medium size: one encoding less
            image = Image.new("RGB", (side, side), rgb)
            draw = ImageDraw.Draw(image)
            draw.rounded_rectangle((120, 120, 480, 480), radius=36, outline=ink, width=5)
            draw.text((300, 280), kind, fill=ink, anchor="mm", font=self._font)
            draw.text((300, 350), colour, fill=ink, anchor="mm", font=self._small)
            original = self._encode(image)
            small = media.THUMBNAILS["small"]
            renditions = [
                media.Rendition("original", original, side, side),
                media.Rendition("small", self._encode(image.resize((small, small))), small, small),
                media.Rendition("medium", original, side, side),
            ]
            self._made[key] = media.Processed("JPEG", "image/jpeg", "jpg", renditions)
        return self._made[key]


def _pictures(
    rows: list[tuple[Any, ...]],
    variant_rows: list[tuple[Any, ...]],
    leaf_of: dict[uuid.UUID, str],
    store: media.MediaStore,
) -> tuple[list[tuple[Any, ...]], list[tuple[str, media.Processed]], list[tuple[Any, ...]]]:
    """A picture per colour a product is sold in (linked to that colour's variants), else one.

    Returns the image rows, what to store under which prefix, and the variant rows with their
    ``image_id`` set.
    """
    placeholders = Placeholders()
    pcols = {c: i for i, c in enumerate(PRODUCT_COLUMNS)}
    vcols = {c: i for i, c in enumerate(VARIANT_COLUMNS)}
    by_product: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
    for v in variant_rows:
        by_product.setdefault(v[vcols["product_id"]], []).append(v)
    image_rows: list[tuple[Any, ...]] = []
    uploads: list[tuple[str, media.Processed]] = []
    linked: list[tuple[Any, ...]] = []
    for r in rows:
        product_id, created = r[pcols["id"]], r[pcols["created_at"]]
        kind = leaf_of[r[pcols["category_id"]]]
        name = r[pcols["name"]]
        variants = by_product[product_id]
        # not sold in colours: one picture in the colour it is named for
        named_for = str(json.loads(r[pcols["attributes"]])["colour"]).title()
        colours: dict[str, list[tuple[Any, ...]]] = {}
        for v in variants:
            colour = json.loads(v[vcols["options"]]).get("Colour", named_for)
            colours.setdefault(colour, []).append(v)
        for position, (colour, shown) in enumerate(colours.items()):
            image_id = uuid.uuid4()
            prefix = media.new_prefix(product_id, image_id)
            processed = placeholders.get(kind, colour)
            uploads.append((prefix, processed))
            one_of_several = len(colours) > 1
            image_rows.append(
                (
                    image_id,
                    product_id,
                    shown[0][vcols["id"]] if one_of_several else None,
                    store.public_base,
                    prefix,
                    processed.extension,
                    f"{name} in {colour.lower()}" if one_of_several else name,
                    position,
                    processed.original.width,
                    processed.original.height,
                    created,
                )
            )
            for v in shown:
                v_linked = list(v)
                v_linked[vcols["image_id"]] = image_id if one_of_several else None
                linked.append(tuple(v_linked))
    return image_rows, uploads, linked


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
    "image_id",
    "created_at",
    "updated_at",
]
IMAGE_COLUMNS = [
    "id",
    "product_id",
    "variant_id",
    "base_url",
    "prefix",
    "extension",
    "alt",
    "position",
    "width",
    "height",
    "created_at",
]


async def _store(store: media.MediaStore, uploads: list[tuple[str, media.Processed]]) -> None:
    """Every picture's renditions into storage, many at a time; on failure none is left behind."""
    await store.ensure_bucket()
    await store.put_many(uploads)


async def seed(
    settings: CatalogSettings,
    *,
    products: int,
    force: bool = False,
    with_events: bool = False,
    seed_value: int = 42,
    variants_per_product: int | None = None,
    pictures: bool | None = None,
) -> int:
    """Create the demo catalog; returns how many products were written.

    ``pictures`` (default: when image storage is configured) gives every product generated
    placeholder pictures, one per colour it is sold in, stored before the rows that name them.
    """
    from services.catalog.app import MIGRATIONS

    store = media.open_store(settings)
    pictures = store.enabled if pictures is None else pictures
    await migrate(settings.db_url, MIGRATIONS)
    conn = await asyncpg.connect(_dsn(settings), timeout=10)
    uploads: list[tuple[str, media.Processed]] = []
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
            image_rows: list[tuple[Any, ...]] = []
            if pictures:
                leaf_of = {category_id: leaf for leaf, category_id in leaves.items()}
                image_rows, uploads, variant_rows = _pictures(rows, variant_rows, leaf_of, store)
                await _store(store, uploads)
                originals: dict[uuid.UUID, list[str]] = {}
                for image in image_rows:
                    originals.setdefault(image[1], []).append(f"{image[3]}/{image[4]}/original.{image[5]}")
                at = PRODUCT_COLUMNS.index("images")
                rows = [(*r[:at], json.dumps(originals[r[0]]), *r[at + 1 :]) for r in rows]
            await conn.copy_records_to_table("products", records=rows, columns=PRODUCT_COLUMNS)
            await conn.copy_records_to_table("variants", records=variant_rows, columns=VARIANT_COLUMNS)
            if image_rows:
                await conn.copy_records_to_table("product_images", records=image_rows, columns=IMAGE_COLUMNS)
            if with_events:
                outbox += _created_events(rows, variant_rows, image_rows)
                await conn.copy_records_to_table(
                    "outbox", records=outbox, columns=["id", "routing_key", "payload"]
                )
        uploads = []  # named by committed rows now
        # fresh statistics (and a vacuumed visibility map) so the planner picks the indexes at once
        await conn.execute(OPTION_PAIRS_SQL.format(scope=""))
        await conn.execute(OPTION_VALUES_SQL.format(where=""))
        await conn.execute("VACUUM ANALYZE products")
        await conn.execute("VACUUM ANALYZE variants")
    finally:
        await conn.close()
        if uploads:  # stored, but the rows naming them were not written
            await store.delete(
                [media.MediaStore.key(p, r.name, x.extension) for p, x in uploads for r in x.renditions]
            )
    print(
        f"seeded {products} products ({len(variant_rows)} variants, {len(image_rows)} pictures) "
        f"in {len(leaves)} leaf categories"
    )
    return products


def _created_events(
    rows: list[tuple[Any, ...]], variant_rows: list[tuple[Any, ...]], image_rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """product.created for each product, as the admin routes would have published it."""
    cols = {c: i for i, c in enumerate(PRODUCT_COLUMNS)}
    vcols = {c: i for i, c in enumerate(VARIANT_COLUMNS)}
    icols = {c: i for i, c in enumerate(IMAGE_COLUMNS)}
    by_product: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for v in variant_rows:
        wire = {
            c: v[vcols[c]] for c in VARIANT_COLUMNS if c not in ("product_id", "created_at", "updated_at")
        }
        wire["options"] = json.loads(wire["options"])
        by_product.setdefault(v[vcols["product_id"]], []).append(wire)
    images_of: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for i in image_rows:
        images_of.setdefault(i[icols["product_id"]], []).append(
            image_wire(SimpleNamespace(**{c: i[n] for c, n in icols.items()}))
        )
    events = []
    for r in rows:
        data = {c: r[i] for c, i in cols.items()}
        data["images"], data["attributes"], data["options"] = (
            json.loads(r[cols["images"]]),
            json.loads(r[cols["attributes"]]),
            json.loads(r[cols["options"]]),
        )
        data.update(
            deleted=False,
            deleted_at=None,
            variants=by_product[r[cols["id"]]],
            media=images_of.get(r[cols["id"]], []),
        )
        events.append(_event("product.created", data))
    return events


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--products", type=int, default=500, help="how many products (default 500)")
    parser.add_argument("--force", action="store_true", help="add products even if some exist")
    parser.add_argument("--events", action="store_true", help="also write created events to the outbox")
    parser.add_argument(
        "--no-pictures",
        dest="pictures",
        action="store_false",
        default=None,
        help="no generated pictures (default: pictures when image storage is configured)",
    )
    parser.add_argument(
        "--variants",
        type=int,
        default=None,
        help="variants per product, in one option (default: sizes and colours as a shop sells them)",
    )


async def run(settings: CatalogSettings, args: argparse.Namespace) -> None:
    written = await seed(
        settings,
        products=args.products,
        force=args.force,
        with_events=args.events,
        variants_per_product=args.variants,
        pictures=args.pictures,
    )
    if written == 0 and args.products > 0:
        print(f"the catalog already has products: nothing seeded; --force adds {args.products} more")
