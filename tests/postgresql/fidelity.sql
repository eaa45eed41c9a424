-- A schema with the objects real applications use, for round-trip fidelity tests.
-- Loaded by the test role (the owner of the database) with psql -v ON_ERROR_STOP=1.

CREATE SCHEMA inventory;
CREATE SCHEMA "Sales Dept";
CREATE SCHEMA audit;
COMMENT ON SCHEMA inventory IS 'stock and products — «inventaire»';

CREATE TYPE inventory.status AS ENUM ('draft', 'active', 'retired', 'ausverkauft ü');
CREATE DOMAIN inventory.price AS numeric(12, 2) CHECK (VALUE >= 0);
CREATE DOMAIN public.email AS text CHECK (VALUE ~ '^[^@]+@[^@]+$');
CREATE TYPE public.dimensions AS (width_cm real, height_cm real, depth_cm real);

CREATE SEQUENCE public.invoice_number START 1000 INCREMENT 7;
SELECT setval('public.invoice_number', 4242, true);

CREATE TABLE inventory.product (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    status inventory.status NOT NULL DEFAULT 'draft',
    price inventory.price NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    ratings integer[],
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    size public.dimensions,
    photo bytea,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    price_with_tax numeric GENERATED ALWAYS AS (price * 1.2) STORED
);
COMMENT ON TABLE inventory.product IS 'what we sell';
COMMENT ON COLUMN inventory.product.note IS 'NULL means never written, '''' means cleared';
CREATE INDEX product_attributes ON inventory.product USING gin (attributes);
CREATE INDEX product_active_name ON inventory.product (lower(name)) WHERE status = 'active';

CREATE TABLE "Sales Dept"."Order""Items" (
    "Id" serial PRIMARY KEY,
    "select" text,
    "Product" bigint NOT NULL REFERENCES inventory.product (id) ON DELETE RESTRICT,
    quantity integer NOT NULL CHECK (quantity > 0),
    invoice integer NOT NULL DEFAULT nextval('public.invoice_number'),
    buyer public.email,
    ordered_at timestamptz NOT NULL,
    "Ünïcödé Column" text
);
CREATE INDEX "Order Items by product" ON "Sales Dept"."Order""Items" ("Product", ordered_at DESC);

CREATE TABLE audit.log (
    id bigserial PRIMARY KEY,
    happened_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    table_name text NOT NULL,
    operation text NOT NULL,
    row_data jsonb
);

CREATE FUNCTION audit.record_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.log (table_name, operation, row_data)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
    RETURN NEW;
END
$$;
CREATE TRIGGER product_audit AFTER INSERT OR UPDATE ON inventory.product
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();

CREATE FUNCTION inventory.in_stock_value(p_status inventory.status) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT coalesce(sum(price), 0) FROM inventory.product WHERE status = p_status $$;

CREATE VIEW "Sales Dept".order_summary AS
    SELECT p.name, sum(i.quantity) AS units, count(*) AS orders
    FROM "Sales Dept"."Order""Items" i JOIN inventory.product p ON p.id = i."Product"
    GROUP BY p.name;

CREATE MATERIALIZED VIEW inventory.tag_counts AS
    SELECT tag, count(*) AS products FROM inventory.product, unnest(tags) AS tag GROUP BY tag
    WITH DATA;
CREATE UNIQUE INDEX tag_counts_tag ON inventory.tag_counts (tag);

CREATE TABLE public.measurement (
    city text NOT NULL,
    taken_on date NOT NULL,
    celsius double precision,
    raw_reading real
) PARTITION BY RANGE (taken_on);
CREATE TABLE public.measurement_2023 PARTITION OF public.measurement
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE public.measurement_2024 PARTITION OF public.measurement
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

CREATE TABLE public.empty_table (id integer PRIMARY KEY, value text);

CREATE TABLE public.settings (key text PRIMARY KEY, value text, secret boolean NOT NULL DEFAULT false);
ALTER TABLE public.settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY settings_public ON public.settings FOR SELECT USING (NOT secret);
GRANT SELECT ON public.settings TO PUBLIC;

INSERT INTO inventory.product (sku, name, status, price, tags, ratings, attributes, size, photo, note, created_at)
VALUES
    ('SKU-1', 'Kettle', 'active', 24.90, '{kitchen,steel}', '{5,4,5}', '{"watts": 2200, "colors": ["red", "black"]}',
     '(20.5,25,18)', '\x89504e470d0a1a0a00ff', NULL, '2024-03-01 08:00:00+01'),
    ('SKU-2', 'Théière «Jasmin»', 'active', 0, '{kitchen,"with space","quote\"d"}', '{}', '{"nested": {"a": [1, 2, null]}}',
     NULL, '', '', '2024-02-29 23:59:59.999999+00'),
    ('SKU-3', 'Lamp 💡', 'retired', 99.99, '{}', NULL, '{}', '(1,2,3)', NULL, 'tab	and
newline and \backslash', '1999-12-31 23:00:00-05'),
    ('SKU-4', '茶壶', 'ausverkauft ü', 12.00, '{NULL,""}', '{NULL}', '{"emoji": "🎉", "unicode": "\u00e9"}', NULL,
     decode('00010203', 'hex'), 'plain', 'infinity');

INSERT INTO "Sales Dept"."Order""Items" ("select", "Product", quantity, buyer, ordered_at, "Ünïcödé Column")
SELECT CASE WHEN g % 3 = 0 THEN NULL WHEN g % 3 = 1 THEN '' ELSE 'x' || g END,
       1 + g % 4, 1 + g % 5, 'buyer' || g || '@example.org',
       timestamptz '2024-01-01 00:00:00+00' + g * interval '37 minutes', 'Grüße ' || g
FROM generate_series(1, 500) AS g;

INSERT INTO public.measurement
SELECT CASE g % 3 WHEN 0 THEN 'Zürich' WHEN 1 THEN 'Oslo' ELSE 'São Paulo' END,
       date '2023-01-01' + g, g / 7.0, (g % 100) / 3.0
FROM generate_series(0, 700) AS g;

INSERT INTO public.settings VALUES ('theme', 'dark', false), ('api_key', 'k-123', true), ('empty', '', false), ('null', NULL, false);

SELECT nextval('"Sales Dept"."Order""Items_Id_seq"');
UPDATE inventory.product SET note = 'updated' WHERE sku = 'SKU-1';
REFRESH MATERIALIZED VIEW inventory.tag_counts;
SELECT lo_from_bytea(0, convert_to('a large object, stored beside the tables', 'UTF8'));
