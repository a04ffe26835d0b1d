-- The write model: the normalized tables that commands change.
--
-- Every rule that a writer could break is enforced here as well as in Rust, so
-- that a psql session or another service writing to these tables cannot put
-- the data into a state the service would never produce. Every constraint is
-- named: the service maps violations to HTTP errors by constraint name.

CREATE SCHEMA IF NOT EXISTS write;

-- Ids are text so that clients can bring their own ("order-001"); the server
-- generates a UUIDv7 when none is given. The pattern is the same as in Rust.
CREATE DOMAIN write.entity_id AS text
    CONSTRAINT entity_id_pattern CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$');

-- Money: exact, two decimal places, never negative.
CREATE DOMAIN write.money AS numeric(14, 2)
    CONSTRAINT money_not_negative CHECK (VALUE >= 0);

CREATE TABLE write.customers (
    id          write.entity_id PRIMARY KEY,
    name        text        NOT NULL CONSTRAINT customers_name_not_blank CHECK (btrim(name) <> '' AND length(name) <= 200),
    email       text        NOT NULL CONSTRAINT customers_email_shape CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE write.products (
    id          write.entity_id PRIMARY KEY,
    name        text        NOT NULL CONSTRAINT products_name_not_blank CHECK (btrim(name) <> '' AND length(name) <= 200),
    price       write.money NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE write.orders (
    id            write.entity_id PRIMARY KEY,
    customer_id   text        NOT NULL CONSTRAINT orders_customer_id_fkey REFERENCES write.customers (id),
    status        text        NOT NULL DEFAULT 'pending'
                  CONSTRAINT orders_status_known CHECK (status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    total         write.money NOT NULL,
    version       integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    cancel_reason text,
    CONSTRAINT orders_cancel_reason_only_when_cancelled
        CHECK (cancel_reason IS NULL OR status = 'cancelled')
);

-- A customer's orders, newest first: what "list my orders" needs.
CREATE INDEX orders_customer_created_idx ON write.orders (customer_id, created_at DESC);
CREATE INDEX orders_created_idx ON write.orders (created_at);

CREATE TABLE write.order_items (
    order_id    text        NOT NULL CONSTRAINT order_items_order_id_fkey REFERENCES write.orders (id),
    line_no     smallint    NOT NULL CONSTRAINT order_items_line_no_positive CHECK (line_no > 0),
    product_id  text        NOT NULL CONSTRAINT order_items_product_id_fkey REFERENCES write.products (id),
    quantity    integer     NOT NULL CONSTRAINT order_items_quantity_positive CHECK (quantity > 0),
    unit_price  write.money NOT NULL,
    CONSTRAINT order_items_pkey PRIMARY KEY (order_id, line_no)
);

CREATE INDEX order_items_product_idx ON write.order_items (product_id);

-- ---------------------------------------------------------------------------
-- The order status machine, the same table as domain::OrderStatus:
--   pending   -> confirmed | cancelled
--   confirmed -> shipped   | cancelled
--   shipped   -> delivered | cancelled
--   delivered, cancelled: terminal
-- ---------------------------------------------------------------------------
CREATE FUNCTION write.order_transition_allowed(from_status text, to_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (from_status, to_status) IN (
        ('pending',   'confirmed'), ('pending',   'cancelled'),
        ('confirmed', 'shipped'),   ('confirmed', 'cancelled'),
        ('shipped',   'delivered'), ('shipped',   'cancelled'))
$$;

-- Orders are born pending. Every update bumps the version and updated_at, so
-- optimistic concurrency holds for any writer; a status change must be a legal
-- transition. The key and the creation facts never change.
CREATE FUNCTION write.orders_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' THEN
            RAISE EXCEPTION 'a new order must be pending, not %', NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_status_transition';
        END IF;
        NEW.version := 1;
        RETURN NEW;
    END IF;

    IF NEW.id <> OLD.id OR NEW.customer_id <> OLD.customer_id
       OR NEW.created_at <> OLD.created_at OR NEW.total <> OLD.total THEN
        RAISE EXCEPTION 'an order''s id, customer, total and creation time never change'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_immutable_facts';
    END IF;
    -- Every version of an order is one event in the log, so an update that
    -- does not move the status is refused rather than silently versioned.
    IF NEW.status = OLD.status THEN
        RAISE EXCEPTION 'order % is already %', OLD.id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_status_transition';
    END IF;
    IF NOT write.order_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'order % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_status_transition';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_guard
    BEFORE INSERT OR UPDATE ON write.orders
    FOR EACH ROW EXECUTE FUNCTION write.orders_guard();

-- Customers and products version themselves the same way.
CREATE FUNCTION write.bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'an id never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'id_immutable';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER customers_bump_version
    BEFORE UPDATE ON write.customers
    FOR EACH ROW EXECUTE FUNCTION write.bump_version();

CREATE TRIGGER products_bump_version
    BEFORE UPDATE ON write.products
    FOR EACH ROW EXECUTE FUNCTION write.bump_version();

-- Order items are written once, in the transaction that creates their order,
-- and never changed; so every change to an order is an event in the log.
-- An order's OrderCreated event is written when its creating transaction
-- commits (V2), so "no event yet" means "created by this transaction" (or by
-- one still running, which the foreign key check has already waited for).
-- This holds across savepoints, which an xmin comparison would not.
-- Checked once per statement over the inserted rows (a transition table),
-- not once per row: an order's lines usually arrive in one statement.
CREATE FUNCTION write.order_items_only_with_new_order() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stray text;
BEGIN
    SELECT n.order_id INTO stray
      FROM new_items n
     WHERE EXISTS (SELECT 1 FROM write.order_events e WHERE e.order_id = n.order_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'items can only be added to order % in the transaction that creates it', stray
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_items_immutable';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER order_items_only_with_new_order
    AFTER INSERT ON write.order_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION write.order_items_only_with_new_order();

CREATE FUNCTION write.order_items_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order items are written with their order and never changed'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_items_immutable';
END
$$;

CREATE TRIGGER order_items_immutable
    BEFORE UPDATE OR DELETE ON write.order_items
    FOR EACH ROW EXECUTE FUNCTION write.order_items_immutable();
