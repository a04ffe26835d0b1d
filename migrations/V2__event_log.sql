-- The event log and the idempotency store.
--
-- Events are appended by triggers in the same transaction as the change they
-- describe, so no writer (the service, psql, a batch job) can change an order
-- without leaving its event behind, and no event exists for a change that
-- rolled back.

CREATE TABLE write.order_events (
    event_id        bigint      GENERATED ALWAYS AS IDENTITY CONSTRAINT order_events_pkey PRIMARY KEY,
    order_id        text        NOT NULL CONSTRAINT order_events_order_id_fkey REFERENCES write.orders (id),
    -- The order's version after this event: events and versions match one to one.
    order_version   integer     NOT NULL,
    event_type      text        NOT NULL
                    CONSTRAINT order_events_type_known CHECK (event_type IN ('OrderCreated', 'OrderStatusChanged', 'OrderCancelled')),
    -- The shape of payload; bump it when a payload changes shape.
    schema_version  smallint    NOT NULL DEFAULT 1,
    payload         jsonb       NOT NULL,
    -- The request id of the command that caused the event (X-Request-Id).
    correlation_id  text,
    -- The writing transaction: freshness tokens and change detection use it.
    txid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_events_one_per_version UNIQUE (order_id, order_version)
);

-- Change detection scans only the transactions a refresh has not yet seen.
CREATE INDEX order_events_txid_idx ON write.order_events (txid);

CREATE FUNCTION write.correlation_id() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('pgcqrs.correlation_id', true), '')
$$;

-- OrderCreated fires at commit (a deferred constraint trigger), when the
-- order's items are all in place: the payload carries them, and an order
-- without items or whose total is not the sum of its lines cannot commit.
CREATE FUNCTION write.order_created_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lines      jsonb;
    line_total numeric;
BEGIN
    SELECT jsonb_agg(jsonb_build_object(
               'line_no', i.line_no, 'product_id', i.product_id,
               'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.line_no),
           sum(i.quantity * i.unit_price)
      INTO lines, line_total
      FROM write.order_items i
     WHERE i.order_id = NEW.id;

    IF lines IS NULL THEN
        RAISE EXCEPTION 'order % has no items', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_have_items';
    END IF;
    IF line_total <> NEW.total THEN
        RAISE EXCEPTION 'order % total % is not the sum of its lines %', NEW.id, NEW.total, line_total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_total_matches_items';
    END IF;

    INSERT INTO write.order_events (order_id, order_version, event_type, payload, correlation_id)
    VALUES (NEW.id, NEW.version, 'OrderCreated',
            jsonb_build_object('customer_id', NEW.customer_id, 'total', NEW.total, 'items', lines),
            write.correlation_id());
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER order_created_event
    AFTER INSERT ON write.orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION write.order_created_event();

CREATE FUNCTION write.order_status_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO write.order_events (order_id, order_version, event_type, payload, correlation_id)
    VALUES (NEW.id, NEW.version,
            CASE WHEN NEW.status = 'cancelled' THEN 'OrderCancelled' ELSE 'OrderStatusChanged' END,
            jsonb_strip_nulls(jsonb_build_object('from', OLD.status, 'to', NEW.status, 'reason', NEW.cancel_reason)),
            write.correlation_id());
    RETURN NULL;
END
$$;

CREATE TRIGGER order_status_event
    AFTER UPDATE ON write.orders
    FOR EACH ROW EXECUTE FUNCTION write.order_status_event();

-- The log is append-only.
CREATE FUNCTION write.order_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_events_append_only';
END
$$;

CREATE TRIGGER order_events_append_only
    BEFORE UPDATE OR DELETE ON write.order_events
    FOR EACH ROW EXECUTE FUNCTION write.order_events_append_only();

-- Changes to the catalog tables (customers, products) are recorded here, one
-- row per changed row, insert-only: read models that depend on them know
-- what is dirty without a shared flag row that every writer would queue on.
-- Catalog writes are rare next to orders. Order changes need no row here:
-- every one of them is an event above.
CREATE TABLE write.catalog_changes (
    change_id   bigint      GENERATED ALWAYS AS IDENTITY CONSTRAINT catalog_changes_pkey PRIMARY KEY,
    source      text        NOT NULL,
    -- The id of the changed customer or product.
    key         text        NOT NULL,
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX catalog_changes_txid_idx ON write.catalog_changes (txid);

CREATE FUNCTION write.record_catalog_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO write.catalog_changes (source, key)
    VALUES (TG_TABLE_NAME, CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_record_change
    AFTER INSERT OR UPDATE OR DELETE ON write.customers
    FOR EACH ROW EXECUTE FUNCTION write.record_catalog_change();

CREATE TRIGGER products_record_change
    AFTER INSERT OR UPDATE OR DELETE ON write.products
    FOR EACH ROW EXECUTE FUNCTION write.record_catalog_change();

-- Idempotency: a command claims its key first (a concurrent retry with the
-- same key waits on the claim) and stores its response in the same
-- transaction as its effects, so a retry either replays that response or, if
-- the first attempt rolled back, runs the command afresh.
CREATE TABLE write.idempotency_keys (
    idempotency_key     text        NOT NULL CONSTRAINT idempotency_keys_pkey PRIMARY KEY,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_fingerprint bytea       NOT NULL,
    -- Both set before the claiming transaction commits.
    status_code         smallint,
    response_body       jsonb,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idempotency_keys_created_idx ON write.idempotency_keys (created_at);
