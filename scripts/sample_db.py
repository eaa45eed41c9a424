"""Build a SQLite database of realistic, mixed shop data for demos and benchmarks.

    python scripts/sample_db.py OUT.db --size 100MB [--seed 42]

The database is a small web shop: ``customers`` (names, some non-ASCII, emails, cities,
countries, a few NULL phones), ``products`` (names, descriptions, prices), ``orders``
(timestamps, statuses, totals that add up), ``order_items``, ``reviews`` (free text,
ratings, some empty titles) and ``events`` (an activity log with JSON payloads and
messages). Free text is drawn word by word from a fixed vocabulary with a skewed
(Zipf-like) frequency, so it compresses like real data — ``zstd -3`` makes it roughly
3x smaller — rather than like one repeated value.

The output depends only on ``--seed`` and ``--size``: the same arguments give the same
rows. Data is added in batches until the file reaches the requested size, so the result
is within a few percent of it. The file is built under ``OUT.partial`` and renamed into
place when complete: if ``OUT`` exists, it is a finished database. Only the standard
library is used; about 1 GB per minute on a modest machine.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DEFAULT_SEED = 42
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
PAGE_SIZE = 4096
EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_DAYS = 6 * 365  # orders and events spread over six years, in insertion order
BYTES_PER_CUSTOMER = 3000  # rough file bytes one customer brings (with orders, events, ...)


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of *text*."""
    return tuple(text.split())


SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    created_at TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    loyalty_points INTEGER NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    price REAL NOT NULL,
    stock INTEGER NOT NULL,
    weight_kg REAL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ordered_at TEXT NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    total REAL NOT NULL,
    shipping_city TEXT NOT NULL,
    note TEXT
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL
);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    rating INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customers(id),
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    message TEXT
);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX order_items_order ON order_items(order_id);
CREATE INDEX events_created ON events(created_at);
"""

FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony "
    "Betty Mark Sandra Paul Ashley Steven Emily Andrew Donna Kevin Michelle Brian Carol George "
    "Amanda Emma Olivia Noah Liam Sophia Lucas Mia Hannah Leon Lena Jonas Anna Felix Marie "
    "José María Zoë Chloé Łukasz Søren Björn Ólafur Renée Ingrid Gunnar Małgorzata Jürgen "
    "Ümit Çağla Ángel Inés Joaquín François Hélène Siobhán Dmitri Yuki Haruto Priya Arjun "
    "Wei Mei Aiko Kwame Amara Fatima Omar Nguyễn Thảo Dũng 李娜 王伟 Алексей Ольга"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
    "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Nowak "
    "Kowalski Wiśniewski Dąbrowski Jensen Nielsen Hansen Søndergaard Andersson Johansson "
    "Karlsson Núñez Peña Muñoz García Fernández Dubois Lefèvre Moreau Girard O'Brien "
    "Ó'Súilleabháin Rossi Russo Ferrari Esposito Bianchi Tanaka Suzuki Satō Kim Park Chen "
    "Wang Patel Singh Okafor Mensah Öztürk Yılmaz Şahin Ivanov Иванова Nguyễn Trần"  # noqa: RUF001
)
CITIES = (
    ("New York", "US"),
    ("Los Angeles", "US"),
    ("Chicago", "US"),
    ("Houston", "US"),
    ("Seattle", "US"),
    ("Toronto", "CA"),
    ("Montréal", "CA"),
    ("Vancouver", "CA"),
    ("México City", "MX"),
    ("São Paulo", "BR"),
    ("Rio de Janeiro", "BR"),
    ("Buenos Aires", "AR"),
    ("London", "GB"),
    ("Manchester", "GB"),
    ("Dublin", "IE"),
    ("Paris", "FR"),
    ("Lyon", "FR"),
    ("Berlin", "DE"),
    ("München", "DE"),
    ("Köln", "DE"),
    ("Zürich", "CH"),
    ("Genève", "CH"),
    ("Wien", "AT"),
    ("Amsterdam", "NL"),
    ("Bruxelles", "BE"),
    ("København", "DK"),
    ("Malmö", "SE"),
    ("Stockholm", "SE"),
    ("Oslo", "NO"),
    ("Reykjavík", "IS"),
    ("Helsinki", "FI"),
    ("Kraków", "PL"),
    ("Warszawa", "PL"),
    ("Praha", "CZ"),
    ("Madrid", "ES"),
    ("A Coruña", "ES"),
    ("Lisboa", "PT"),
    ("Roma", "IT"),
    ("Milano", "IT"),
    ("İstanbul", "TR"),
    ("Athína", "GR"),
    ("Tokyo", "JP"),
    ("Ōsaka", "JP"),
    ("Seoul", "KR"),
    ("Shanghai", "CN"),
    ("Mumbai", "IN"),
    ("Bengaluru", "IN"),
    ("Sydney", "AU"),
    ("Auckland", "NZ"),
    ("Lagos", "NG"),
    ("Nairobi", "KE"),
    ("Cape Town", "ZA"),
    ("Hà Nội", "VN"),
    ("Singapore", "SG"),
)
MAIL_DOMAINS = (
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
    "web.de",
    "orange.fr",
    "libero.it",
    "example.org",
)
CATEGORIES = (
    "Books",
    "Electronics",
    "Kitchen",
    "Garden",
    "Toys",
    "Sports",
    "Clothing",
    "Shoes",
    "Beauty",
    "Office",
    "Music",
    "Grocery",
    "Pet Supplies",
    "Tools",
    "Outdoor",
    "Baby",
)
ADJECTIVES = _words(
    "Classic Compact Deluxe Ergonomic Eco Lightweight Premium Portable Rugged Smart Vintage "
    "Wireless Handmade Organic Modern Rustic Slim Heavy-Duty Foldable Waterproof Cozy Sleek "
    "Adjustable Minimalist Professional Ultra Essential Everyday Travel Mini"
)
NOUNS = _words(
    "Backpack Blender Bottle Chair Desk Lamp Headphones Jacket Kettle Keyboard Knife Mat Mouse "
    "Mug Notebook Pan Pillow Planter Scarf Sneakers Speaker Tent Towel Umbrella Wallet Watch "
    "Blanket Charger Cable Drone Camera Tripod Helmet Gloves Socks Candle Vase Teapot Grinder "
    "Puzzle Kite Ball Racket Skillet Thermos Rug Shelf Stool Hammock"
)
MATERIALS = _words("Bamboo Oak Steel Cotton Wool Leather Glass Ceramic Aluminium Linen Silicone Walnut")
COLORS = _words("Black White Red Blue Green Grey Navy Olive Sand Teal Coral Mustard Ivory Charcoal")
RATINGS = (5, 5, 5, 4, 4, 3, 2, 1)
STATUSES = ("delivered",) * 12 + ("shipped",) * 3 + ("paid", "pending", "cancelled", "refunded")
CURRENCIES = ("USD",) * 6 + ("EUR",) * 4 + ("GBP", "CAD", "JPY", "BRL")
EVENT_KINDS = (
    ("page_view",) * 10
    + ("search",) * 4
    + ("add_to_cart",) * 3
    + ("login", "logout", "checkout", "password_reset", "newsletter_signup", "support_ticket")
)
PAGES = (
    "/",
    "/cart",
    "/checkout",
    "/account",
    "/orders",
    "/search",
    "/help",
    "/deals",
    *(f"/c/{c.lower().replace(' ', '-')}" for c in CATEGORIES),
)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
ORDER_NOTES = (
    "Please leave at the back door.",
    "Gift — please remove the price tag.",
    "Ring twice, the bell is broken.",
    "Deliver after 6 pm.",
    "Bitte beim Nachbarn abgeben.",
    "Livrer à la loge du gardien.",
    "Call me before delivery: the gate code changed.",
)

# Free text: the words of ordinary English prose plus shop jargon. Their order gives their
# rank: earlier words are drawn far more often (Zipf's law), as in real text.
VOCABULARY = _words("""
the and to a of it is i for in this that with my was on not but very you they have are be
as so at just one would had all great good product if no use can will from out them or were
really do your like me an well get after more when up about only time has quality its much
used bought what also than other nice works price buy even little work order did love
easy size fit because first been these item could some any back first recommend two too
well made better which there does make long still over new day need perfect years again
into months using problem way got how after then looks happy received few box fine light
returned bit enough sure small arrived right while worth by ordered down off thing each
delivery fast cheap battery strong last bad small looks broke since quite color
charge hold holds easily comfortable durable sturdy soft poor disappointed excellent
packaging shipping seller customer service refund replacement warranty instructions
assembly screws handle lid cord button screen strap zipper pocket fabric material
week month year morning evening daily kitchen office garden kids dog cat car trip travel
camping hiking running gym home room desk bed table wall floor window door shelf
definitely absolutely probably honestly actually unfortunately overall however though
although otherwise exactly slightly extremely pretty almost never always sometimes usually
husband wife son daughter friend mother father gift birthday christmas present family
hot cold warm cool dry wet heavy light loud quiet bright dark clean dirty sharp smooth
cheap expensive affordable reasonable value money dollars euros pounds budget cost
water coffee tea rice bread pasta soup milk juice wine beer oil sauce spice salt sugar
phone laptop tablet charger cable speaker headphones camera watch keyboard mouse monitor
printer router drone console controller blender kettle toaster mixer grinder knife pan pot
pillow blanket towel rug lamp chair sofa mattress curtain mirror basket bottle mug cup
jacket shirt shoes socks gloves scarf hat boots dress pants shorts sweater coat backpack
stopped started started keeps kept tried trying expected expect wanted wish hoped seems
looked felt feels smells tastes sounds broken cracked scratched missing wrong damaged
replaced exchanged contacted emailed waited shipped delivered packed wrapped opened
minutes hours days weeks inches feet pounds kilos liters meters centimeters percent
three four five six ten twenty hundred half double single several many most both every
compared previous older newer cheaper brand model version design style shape weight
noticed decided suggest mention note update edit star stars review reviews rating
""")

EVENT_MESSAGES = {
    "page_view": "viewed page",
    "search": "searched the catalog",
    "add_to_cart": "added an item to the cart",
    "login": "signed in",
    "logout": "signed out",
    "checkout": "started checkout",
    "password_reset": "requested a password reset",
    "newsletter_signup": "subscribed to the newsletter",
}


def parse_size(text: str) -> int:
    """``"100MB"`` → bytes; units K, M, G, T (optionally with ``B`` or ``iB``) are powers of 1024."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 5MB, 100MB, 1GB)")
    size = int(float(match.group(1)) * UNITS[match.group(2)])
    if size < 64 * 1024:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 64KB)")
    return size


class Dice:
    """Fast draws from one seeded ``random.Random`` (``randint``/``choice`` cost 3x more)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.random

    def pick(self, seq: Sequence[T]) -> T:
        """A uniformly chosen element of *seq*."""
        return seq[int(self.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        """A uniformly chosen integer from *low* to *high*, both included."""
        return low + int(self.random() * (high - low + 1))


class TextMaker:
    """Draws words fast: a table of 65,536 slots filled by Zipf weight, indexed by random bytes."""

    def __init__(self, dice: Dice, words: Sequence[str]) -> None:
        weights = [1.0 / (rank + 2.7) for rank in range(len(words))]
        self._table = dice.rng.choices(list(words), weights, k=1 << 16)
        self._randbytes = dice.rng.randbytes
        self._between = dice.between

    def words(self, count: int) -> list[str]:
        """*count* words, drawn independently."""
        indices = memoryview(self._randbytes(2 * count)).cast("H")
        return list(map(self._table.__getitem__, indices))

    def sentence(self, count: int) -> str:
        """A capitalized sentence of *count* words with a full stop."""
        text = " ".join(self.words(count))
        return text[:1].upper() + text[1:] + "."

    def paragraph(self, sentences: int, low: int, high: int) -> str:
        """*sentences* sentences of *low* to *high* words each."""
        between = self._between
        return " ".join(self.sentence(between(low, high)) for _ in range(sentences))


class Clock:
    """Formats seconds since :data:`EPOCH` as ``YYYY-MM-DD HH:MM:SS``, with cached days."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, seconds: float) -> str:
        """The timestamp *seconds* after the epoch, to the second."""
        day, second = divmod(int(seconds), 86400)
        date = self._days.get(day)
        if date is None:
            date = self._days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
        hour, rest = divmod(second, 3600)
        return f"{date} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}"


class ShopGenerator:
    """Yields rows for each table; all randomness comes from one seeded ``random.Random``."""

    def __init__(self, seed: int, products: int) -> None:
        self.dice = Dice(random.Random(seed))
        self.text = TextMaker(self.dice, VOCABULARY)
        self.clock = Clock()
        self.product_count = products
        self.prices: list[float] = []
        self.customer_id = 0
        self.order_id = 0
        self.item_id = 0
        self.review_id = 0
        self.event_id = 0

    def products(self) -> Iterator[tuple[object, ...]]:
        """The whole catalog, with prices remembered for the order items."""
        rng, pick, between = self.dice.rng, self.dice.pick, self.dice.between
        for pid in range(1, self.product_count + 1):
            category = pick(CATEGORIES)
            name = f"{pick(ADJECTIVES)} {pick(MATERIALS)} {pick(NOUNS)}"
            if rng.random() < 0.5:
                name += f", {pick(COLORS)}"
            price = round(rng.lognormvariate(3.0, 1.0), 2) + 0.99
            self.prices.append(price)
            description = self.text.paragraph(between(2, 6), 6, 18)
            weight = None if rng.random() < 0.1 else round(rng.uniform(0.05, 25.0), 3)
            sku = f"{category[:3].upper()}-{pid:06d}-{between(0, 36**3 - 1):04X}"
            yield (pid, sku, name, category, description, price, between(0, 500), weight)

    def batch(self, customers: int, progress: float) -> dict[str, list[tuple[object, ...]]]:
        """Rows for *customers* new customers and their orders, reviews and events.

        *progress* (0 to 1) places the batch's timestamps along the six-year span, so
        rows arrive in roughly chronological order, as in a real shop's database.
        """
        random_, pick, between = self.dice.random, self.dice.pick, self.dice.between
        expovariate = self.dice.rng.expovariate
        text, iso = self.text, self.clock
        start = SPAN_DAYS * 86400 * progress
        rows: dict[str, list[tuple[object, ...]]] = {
            "customers": [],
            "orders": [],
            "order_items": [],
            "reviews": [],
            "events": [],
        }
        customers_out = rows["customers"]
        orders_out = rows["orders"]
        items_out = rows["order_items"]
        reviews_out = rows["reviews"]
        events_out = rows["events"]
        n_products = self.product_count
        prices = self.prices
        for _ in range(customers):
            self.customer_id += 1
            cid = self.customer_id
            first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
            city, country = pick(CITIES)
            email = f"{first}.{last}{between(1, 999)}@{pick(MAIL_DOMAINS)}".lower().replace("'", "")
            phone = None
            if random_() >= 0.2:
                phone = f"+{between(1, 99)} {between(100, 999)} {between(1000000, 9999999)}"
            joined = start + random_() * 86400 * 30
            customers_out.append(
                (cid, first, last, email, phone, city, country, iso(joined), int(random_() < 0.9), between(0, 5000))
            )
            moment = joined
            for _ in range(int(expovariate(1 / 3.5))):
                self.order_id += 1
                oid = self.order_id
                moment += expovariate(1 / 1_000_000)
                total = 0.0
                for _ in range(1 + int(expovariate(1 / 1.8))):
                    self.item_id += 1
                    product = between(1, n_products)
                    quantity = 1 if random_() < 0.7 else between(2, 6)
                    price = prices[product - 1]
                    if random_() < 0.15:
                        price = round(price * 0.8, 2)  # a sale price
                    total += quantity * price
                    items_out.append((self.item_id, oid, product, quantity, price))
                note = None
                if random_() < 0.08:
                    note = "" if random_() < 0.25 else pick(ORDER_NOTES)
                ship_city = city if random_() < 0.9 else pick(CITIES)[0]
                orders_out.append(
                    (oid, cid, iso(moment), pick(STATUSES), pick(CURRENCIES), round(total, 2), ship_city, note)
                )
                if random_() < 0.3:
                    self.review_id += 1
                    title = "" if random_() < 0.1 else text.sentence(between(2, 7))[:-1].title()
                    reviews_out.append(
                        (
                            self.review_id,
                            between(1, n_products),
                            cid,
                            pick(RATINGS),
                            title,
                            text.paragraph(between(1, 6), 5, 22),
                            iso(moment + between(3, 40) * 86400 + random_() * 86400),
                        )
                    )
            moment = joined
            for _ in range(int(expovariate(1 / 5.0))):
                self.event_id += 1
                moment += expovariate(1 / 200_000)
                kind = pick(EVENT_KINDS)
                ip = f"{between(1, 223)}.{between(0, 255)}.{between(0, 255)}.{between(1, 254)}"
                payload = f'{{"page":"{pick(PAGES)}","agent":"{pick(AGENTS)}","ip":"{ip}"'
                if kind == "search":
                    payload += f',"query":"{" ".join(text.words(between(1, 4)))}"}}'
                elif kind == "add_to_cart":
                    payload += f',"product_id":{between(1, n_products)}}}'
                else:
                    payload += "}"
                message: str | None
                if kind == "support_ticket":
                    message = text.paragraph(between(2, 8), 6, 20)
                elif random_() < 0.05:
                    message = None
                else:
                    message = EVENT_MESSAGES[kind]
                    if random_() < 0.4:
                        message += ": " + text.sentence(between(4, 14))
                anonymous = random_() < 0.1
                events_out.append((self.event_id, None if anonymous else cid, iso(moment), kind, payload, message))
        return rows


INSERTS = {
    "products": "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "customers": "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "orders": "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "order_items": "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)",
    "reviews": "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?)",
    "events": "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
}


def build(
    path: Path, size: int, seed: int = DEFAULT_SEED, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Build the database at *path* (replacing it) of about *size* bytes; return rows per table.

    *progress*, if given, is called with (bytes so far, target bytes) after each batch.
    """
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, partial.with_name(partial.name + "-journal")):
        leftover.unlink(missing_ok=True)
    estimated_customers = max(1, size // BYTES_PER_CUSTOMER)
    batches = max(4, min(200, size // (4 << 20)))  # batches of ~4 MB or less
    per_batch = max(1, estimated_customers // batches)
    generator = ShopGenerator(seed, products=max(50, min(50_000, size // 40_000)))
    counts = dict.fromkeys(INSERTS, 0)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        counts["products"] = _insert(conn, "products", list(generator.products()))
        conn.execute("COMMIT")
        while True:
            current = conn.execute("PRAGMA page_count").fetchone()[0] * PAGE_SIZE
            if progress is not None:
                progress(current, size)
            if current >= size:
                break
            if counts["customers"]:  # aim the last batches at the target, from the bytes per customer so far
                per_customer = max(1, current // counts["customers"])
                customers = min(per_batch, (size - current) // per_customer + 1)
            else:
                customers = per_batch
            rows = generator.batch(customers, current / size)
            conn.execute("BEGIN")
            for table, table_rows in rows.items():
                counts[table] += _insert(conn, table, table_rows)
            conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA user_version = 1")
    finally:
        conn.close()
    os.replace(partial, path)
    return counts


def _insert(conn: sqlite3.Connection, table: str, rows: list[tuple[object, ...]]) -> int:
    conn.executemany(INSERTS[table], rows)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the database file to write (replaced if it exists)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("100MB"),
        help="approximate file size: 5MB, 100MB, 1GB, ... (powers of 1024; default 100MB)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)

    def report(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r  {done / 2**20:8.1f} / {total / 2**20:.1f} MiB", end="", file=sys.stderr, flush=True)

    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    counts = build(args.out, args.size, args.seed, progress=None if args.quiet else report)
    if not args.quiet:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        rows = ", ".join(f"{n} {t}" for t, n in counts.items())
        print(
            f"wrote {args.out}: {args.out.stat().st_size / 2**20:.1f} MiB in "
            f"{time.perf_counter() - started:.1f}s ({rows})",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
