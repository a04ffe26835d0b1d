-- The schema the migrations build, dumped by pg_dump. Generated: do not edit;
-- regenerate with `PGCQRS_WRITE_SCHEMA=1 cargo test --test api schema_file`.

CREATE SCHEMA pgcqrs;

COMMENT ON SCHEMA pgcqrs IS 'pgcqrs internals: functions the refresher uses. Not for reporting tools.';

CREATE SCHEMA read;

CREATE SCHEMA write;

CREATE DOMAIN write.entity_id AS text
	CONSTRAINT entity_id_pattern CHECK ((VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'::text));

CREATE DOMAIN write.money AS numeric(14,2)
	CONSTRAINT money_not_negative CHECK ((VALUE >= (0)::numeric));

CREATE FUNCTION pgcqrs.cluster_id() RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT system_identifier FROM pg_control_system());
EXCEPTION WHEN insufficient_privilege OR undefined_function THEN
    RETURN NULL;
END
$$;

CREATE FUNCTION pgcqrs.snapshot_advance(covered pg_snapshot, now pg_snapshot, upto xid8) RETURNS pg_snapshot
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    WITH bound AS (
        SELECT least(coalesce(upto, pg_snapshot_xmax(now)), pg_snapshot_xmax(now)) AS u
    ),
    running AS (
        -- below the bound: what `now` had not seen
        SELECT t FROM pg_snapshot_xip(now) t, bound WHERE t < bound.u
        UNION
        -- at or above it: what `covered` had not seen
        SELECT t FROM pg_snapshot_xip(covered) t, bound WHERE t >= bound.u
    ),
    top AS (
        SELECT greatest(pg_snapshot_xmax(covered), bound.u) AS xmax FROM bound
    )
    SELECT (coalesce((SELECT min(t) FROM running), top.xmax)::text || ':' ||
            top.xmax::text || ':' ||
            coalesce((SELECT string_agg(t::text, ',' ORDER BY t) FROM running), ''))::pg_snapshot
    FROM top
$$;

COMMENT ON FUNCTION pgcqrs.snapshot_advance(covered pg_snapshot, now pg_snapshot, upto xid8) IS 'Coverage after a batch: what the first snapshot covers plus every transaction below upto that the second sees.';

CREATE FUNCTION pgcqrs.snapshot_trusted(covers pg_snapshot, taken_on bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT taken_on IS NOT DISTINCT FROM pgcqrs.cluster_id()
       AND pg_snapshot_xmax(covers) <= pg_snapshot_xmax(pg_current_snapshot())
$$;

CREATE FUNCTION write.bump_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION write.correlation_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT nullif(current_setting('pgcqrs.correlation_id', true), '')
$$;

CREATE FUNCTION write.order_created_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION write.order_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_events_append_only';
END
$$;

CREATE FUNCTION write.order_items_immutable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'order items are written with their order and never changed'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_items_immutable';
END
$$;

CREATE FUNCTION write.order_items_only_with_new_order() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION write.order_status_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO write.order_events (order_id, order_version, event_type, payload, correlation_id)
    VALUES (NEW.id, NEW.version,
            CASE WHEN NEW.status = 'cancelled' THEN 'OrderCancelled' ELSE 'OrderStatusChanged' END,
            jsonb_strip_nulls(jsonb_build_object('from', OLD.status, 'to', NEW.status, 'reason', NEW.cancel_reason)),
            write.correlation_id());
    RETURN NULL;
END
$$;

CREATE FUNCTION write.order_transition_allowed(from_status text, to_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT (from_status, to_status) IN (
        ('pending',   'confirmed'), ('pending',   'cancelled'),
        ('confirmed', 'shipped'),   ('confirmed', 'cancelled'),
        ('shipped',   'delivered'), ('shipped',   'cancelled'))
$$;

CREATE FUNCTION write.orders_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION write.project_order_history() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO read.order_history (order_id, order_version, event_type, status, reason, payload, correlation_id, occurred_at)
    VALUES (NEW.order_id, NEW.order_version, NEW.event_type,
            CASE WHEN NEW.event_type = 'OrderCreated' THEN 'pending' ELSE NEW.payload ->> 'to' END,
            NEW.payload ->> 'reason', NEW.payload, NEW.correlation_id, NEW.occurred_at);
    RETURN NULL;
END
$$;

CREATE FUNCTION write.record_catalog_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    changed text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.key ORDER BY n.key)
          INTO changed
          FROM jsonb_each(to_jsonb(NEW)) n
          JOIN jsonb_each(to_jsonb(OLD)) o USING (key)
         WHERE n.value IS DISTINCT FROM o.value;
        IF changed IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO write.catalog_changes (source, key, columns)
    VALUES (TG_TABLE_NAME, CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, changed);
    RETURN NULL;
END
$$;

CREATE TABLE public.refinery_schema_history (
    version integer NOT NULL,
    name character varying(255),
    applied_on character varying(255),
    checksum character varying(255)
);

CREATE TABLE write.customers (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT customers_email_shape CHECK (((email ~ '^[^@\s]+@[^@\s]+$'::text) AND (length(email) <= 254))),
    CONSTRAINT customers_name_not_blank CHECK (((btrim(name) <> ''::text) AND (length(name) <= 200)))
);

CREATE TABLE write.orders (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    total write.money NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    cancel_reason text,
    CONSTRAINT orders_cancel_reason_only_when_cancelled CHECK (((cancel_reason IS NULL) OR (status = 'cancelled'::text))),
    CONSTRAINT orders_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'confirmed'::text, 'shipped'::text, 'delivered'::text, 'cancelled'::text])))
);

CREATE MATERIALIZED VIEW read.customer_orders AS
 SELECT (c.id)::text AS customer_id,
    c.name AS customer_name,
    c.email AS customer_email,
    count(o.id) AS order_count,
    count(o.id) FILTER (WHERE (o.status <> 'cancelled'::text)) AS active_order_count,
    COALESCE(sum((o.total)::numeric) FILTER (WHERE (o.status <> 'cancelled'::text)), 0.00) AS lifetime_value,
    max(o.created_at) AS last_order_at
   FROM (write.customers c
     LEFT JOIN write.orders o ON ((o.customer_id = (c.id)::text)))
  GROUP BY c.id, c.name, c.email
  WITH NO DATA;

COMMENT ON MATERIALIZED VIEW read.customer_orders IS 'One row per customer: how many orders, what they are worth, when the last was placed.';

COMMENT ON COLUMN read.customer_orders.customer_id IS 'The customer''s id.';

COMMENT ON COLUMN read.customer_orders.customer_name IS 'The customer''s current name.';

COMMENT ON COLUMN read.customer_orders.customer_email IS 'The customer''s current e-mail address.';

COMMENT ON COLUMN read.customer_orders.order_count IS 'Orders ever placed, cancelled ones included.';

COMMENT ON COLUMN read.customer_orders.active_order_count IS 'Orders placed and not cancelled.';

COMMENT ON COLUMN read.customer_orders.lifetime_value IS 'Sum of the totals of orders not cancelled (exact, two decimals, no upper bound).';

COMMENT ON COLUMN read.customer_orders.last_order_at IS 'When the customer last placed an order (UTC); empty if never.';

CREATE MATERIALIZED VIEW read.daily_sales AS
 SELECT ((o.created_at AT TIME ZONE 'UTC'::text))::date AS day,
    o.status,
    count(*) AS orders,
    sum((o.total)::numeric) AS revenue
   FROM write.orders o
  GROUP BY (((o.created_at AT TIME ZONE 'UTC'::text))::date), o.status
  WITH NO DATA;

COMMENT ON MATERIALIZED VIEW read.daily_sales IS 'Orders and revenue per UTC day of placement and current status: what the statistics query reads.';

COMMENT ON COLUMN read.daily_sales.day IS 'The UTC calendar day the orders were placed.';

COMMENT ON COLUMN read.daily_sales.status IS 'The orders'' current status.';

COMMENT ON COLUMN read.daily_sales.orders IS 'Number of orders placed that day now in that status.';

COMMENT ON COLUMN read.daily_sales.revenue IS 'Sum of their totals, whatever the status (exact, two decimals, no upper bound).';

CREATE TABLE read.order_history (
    order_id text NOT NULL,
    order_version integer NOT NULL,
    event_type text NOT NULL,
    status text,
    reason text,
    payload jsonb NOT NULL,
    correlation_id text,
    occurred_at timestamp with time zone NOT NULL
);

COMMENT ON TABLE read.order_history IS 'Every event of every order, kept current by trigger: what happened to an order, and when.';

COMMENT ON COLUMN read.order_history.order_id IS 'The order.';

COMMENT ON COLUMN read.order_history.order_version IS 'The order''s version after this event.';

COMMENT ON COLUMN read.order_history.event_type IS 'OrderCreated, OrderStatusChanged or OrderCancelled.';

COMMENT ON COLUMN read.order_history.status IS 'The order''s status after this event.';

COMMENT ON COLUMN read.order_history.reason IS 'Why it was cancelled, for OrderCancelled.';

COMMENT ON COLUMN read.order_history.payload IS 'The event as recorded (JSON).';

COMMENT ON COLUMN read.order_history.correlation_id IS 'Request id of the command that caused it.';

COMMENT ON COLUMN read.order_history.occurred_at IS 'When it happened (UTC).';

CREATE TABLE read.order_lines (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    product_name text NOT NULL,
    quantity integer NOT NULL,
    unit_price numeric(14,2) NOT NULL,
    subtotal numeric(16,2) NOT NULL
);

COMMENT ON TABLE read.order_lines IS 'One row per order line, with the product''s name and the line subtotal. Kept current in small batches by the refresher.';

COMMENT ON COLUMN read.order_lines.order_id IS 'The order the line belongs to.';

COMMENT ON COLUMN read.order_lines.line_no IS 'Position of the line in the order, from 1.';

COMMENT ON COLUMN read.order_lines.product_id IS 'The product ordered.';

COMMENT ON COLUMN read.order_lines.product_name IS 'The product''s current name.';

COMMENT ON COLUMN read.order_lines.quantity IS 'How many were ordered.';

COMMENT ON COLUMN read.order_lines.unit_price IS 'Price of one unit when the order was placed.';

COMMENT ON COLUMN read.order_lines.subtotal IS 'quantity × unit_price, exact.';

CREATE TABLE read.order_summary (
    order_id text NOT NULL,
    customer_id text NOT NULL,
    customer_name text NOT NULL,
    customer_email text NOT NULL,
    item_count integer NOT NULL,
    total numeric(14,2) NOT NULL,
    status text NOT NULL,
    status_display text NOT NULL,
    cancel_reason text,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

COMMENT ON TABLE read.order_summary IS 'One row per order, with its customer and totals: what an order page or list shows. Kept current in small batches by the refresher.';

COMMENT ON COLUMN read.order_summary.order_id IS 'The order''s id.';

COMMENT ON COLUMN read.order_summary.customer_id IS 'The ordering customer''s id.';

COMMENT ON COLUMN read.order_summary.customer_name IS 'The customer''s current name.';

COMMENT ON COLUMN read.order_summary.customer_email IS 'The customer''s current e-mail address.';

COMMENT ON COLUMN read.order_summary.item_count IS 'Number of lines (distinct items) in the order.';

COMMENT ON COLUMN read.order_summary.total IS 'Order total: the sum of quantity × unit price over its lines, exact.';

COMMENT ON COLUMN read.order_summary.status IS 'pending, confirmed, shipped, delivered or cancelled.';

COMMENT ON COLUMN read.order_summary.status_display IS 'The status as a label for people (Pending, Shipped, ...).';

COMMENT ON COLUMN read.order_summary.cancel_reason IS 'Why the order was cancelled; empty unless cancelled.';

COMMENT ON COLUMN read.order_summary.version IS 'The order''s version: 1 when placed, plus one per status change.';

COMMENT ON COLUMN read.order_summary.created_at IS 'When the order was placed (UTC).';

COMMENT ON COLUMN read.order_summary.updated_at IS 'When the order last changed (UTC).';

CREATE TABLE write.order_items (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price write.money NOT NULL,
    CONSTRAINT order_items_line_no_positive CHECK ((line_no > 0)),
    CONSTRAINT order_items_quantity_positive CHECK ((quantity > 0))
);

CREATE TABLE write.products (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    price write.money NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT products_name_not_blank CHECK (((btrim(name) <> ''::text) AND (length(name) <= 200)))
);

CREATE MATERIALIZED VIEW read.product_sales AS
 SELECT (p.id)::text AS product_id,
    p.name AS product_name,
    (p.price)::numeric(14,2) AS current_price,
    count(DISTINCT i.order_id) FILTER (WHERE (o.status <> 'cancelled'::text)) AS orders,
    COALESCE(sum(i.quantity) FILTER (WHERE (o.status <> 'cancelled'::text)), (0)::bigint) AS units,
    COALESCE(sum(((i.quantity)::numeric * (i.unit_price)::numeric)) FILTER (WHERE (o.status <> 'cancelled'::text)), 0.00) AS revenue
   FROM ((write.products p
     LEFT JOIN write.order_items i ON ((i.product_id = (p.id)::text)))
     LEFT JOIN write.orders o ON (((o.id)::text = i.order_id)))
  GROUP BY p.id, p.name, p.price
  WITH NO DATA;

COMMENT ON MATERIALIZED VIEW read.product_sales IS 'One row per product: units sold and revenue, over orders not cancelled.';

COMMENT ON COLUMN read.product_sales.product_id IS 'The product''s id.';

COMMENT ON COLUMN read.product_sales.product_name IS 'The product''s current name.';

COMMENT ON COLUMN read.product_sales.current_price IS 'The product''s catalog price today.';

COMMENT ON COLUMN read.product_sales.orders IS 'Orders (not cancelled) with at least one line of this product.';

COMMENT ON COLUMN read.product_sales.units IS 'Units sold in orders not cancelled.';

COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid (exact, two decimals, no upper bound).';

CREATE TABLE read.read_model_status (
    view_name text NOT NULL,
    current_as_of pg_snapshot NOT NULL,
    verified_at timestamp with time zone NOT NULL,
    last_refresh_at timestamp with time zone,
    last_duration_ms double precision,
    rows bigint,
    pending_since timestamp with time zone,
    last_error text,
    last_error_at timestamp with time zone,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    cluster_id bigint,
    resume_txid xid8,
    resume_src smallint,
    resume_seq bigint,
    resume_key text,
    backlog bigint
);

COMMENT ON TABLE read.read_model_status IS 'Freshness of each read model: how current it is, its last refresh, and its last error.';

COMMENT ON COLUMN read.read_model_status.view_name IS 'The read model (a materialized view in this schema).';

COMMENT ON COLUMN read.read_model_status.current_as_of IS 'Snapshot of the write tables the view is known to reflect.';

COMMENT ON COLUMN read.read_model_status.verified_at IS 'When the view was last known to be current (its data is as of this time).';

COMMENT ON COLUMN read.read_model_status.last_refresh_at IS 'When the view was last refreshed.';

COMMENT ON COLUMN read.read_model_status.last_duration_ms IS 'How long the last refresh took, in milliseconds.';

COMMENT ON COLUMN read.read_model_status.rows IS 'Rows in the view after its last refresh.';

COMMENT ON COLUMN read.read_model_status.pending_since IS 'Time of the oldest change not yet in the view; empty when the view is current.';

COMMENT ON COLUMN read.read_model_status.last_error IS 'Error of the last failed refresh, if the latest attempt failed.';

COMMENT ON COLUMN read.read_model_status.last_error_at IS 'When the last refresh failed.';

COMMENT ON COLUMN read.read_model_status.consecutive_failures IS 'Failed refreshes since the last success.';

COMMENT ON COLUMN read.read_model_status.cluster_id IS 'System identifier of the cluster current_as_of was taken on: a snapshot from another cluster (after a restore) is not trusted.';

COMMENT ON COLUMN read.read_model_status.resume_txid IS 'A transaction the last batch applied only in part (it is not in current_as_of).';

COMMENT ON COLUMN read.read_model_status.resume_src IS 'With resume_txid: the change source (0 orders, 1 catalog) of the last change applied.';

COMMENT ON COLUMN read.read_model_status.resume_seq IS 'With resume_txid: the sequence number of the last change applied.';

COMMENT ON COLUMN read.read_model_status.resume_key IS 'With resume_txid: the key (order) of the last change applied.';

COMMENT ON COLUMN read.read_model_status.backlog IS 'Changes not yet applied when the last batch or refresh finished.';

CREATE TABLE read.refresh_log (
    refresh_id bigint NOT NULL,
    view_name text NOT NULL,
    covers pg_snapshot NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    duration_ms double precision NOT NULL,
    rows bigint NOT NULL,
    instance text NOT NULL,
    changed_rows bigint,
    kind text,
    changes bigint,
    backlog bigint
);

COMMENT ON TABLE read.refresh_log IS 'One row per refresh of a read model.';

COMMENT ON COLUMN read.refresh_log.refresh_id IS 'Sequence number of the refresh.';

COMMENT ON COLUMN read.refresh_log.view_name IS 'The read model refreshed.';

COMMENT ON COLUMN read.refresh_log.covers IS 'Snapshot taken just before the refresh: every transaction visible in it is in the refreshed view.';

COMMENT ON COLUMN read.refresh_log.started_at IS 'When the refresh started.';

COMMENT ON COLUMN read.refresh_log.finished_at IS 'When the refresh finished.';

COMMENT ON COLUMN read.refresh_log.duration_ms IS 'Duration of the refresh, in milliseconds.';

COMMENT ON COLUMN read.refresh_log.rows IS 'Rows in the read model after the refresh (an estimate for incrementally kept ones).';

COMMENT ON COLUMN read.refresh_log.instance IS 'Service instance that ran the refresh.';

COMMENT ON COLUMN read.refresh_log.changed_rows IS 'For a batch of an incrementally kept read model: rows it recomputed. Empty for a full refresh.';

COMMENT ON COLUMN read.refresh_log.kind IS 'batch (changes applied incrementally), refresh (recomputed whole), rebuild (refilled from empty) or resync (recomputed after a restore from another cluster).';

COMMENT ON COLUMN read.refresh_log.changes IS 'Change records (events, catalog changes) applied.';

COMMENT ON COLUMN read.refresh_log.backlog IS 'Change records still waiting after this refresh.';

ALTER TABLE read.refresh_log ALTER COLUMN refresh_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME read.refresh_log_refresh_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE write.catalog_changes (
    change_id bigint NOT NULL,
    source text NOT NULL,
    key text NOT NULL,
    txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    columns text[]
);

COMMENT ON COLUMN write.catalog_changes.columns IS 'Columns the update changed; empty for an insert or delete (every column).';

ALTER TABLE write.catalog_changes ALTER COLUMN change_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME write.catalog_changes_change_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE write.idempotency_keys (
    idempotency_key text NOT NULL,
    request_fingerprint bytea NOT NULL,
    status_code smallint,
    response_body jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE write.order_events (
    event_id bigint NOT NULL,
    order_id text NOT NULL,
    order_version integer NOT NULL,
    event_type text NOT NULL,
    schema_version smallint DEFAULT 1 NOT NULL,
    payload jsonb NOT NULL,
    correlation_id text,
    txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_events_type_known CHECK ((event_type = ANY (ARRAY['OrderCreated'::text, 'OrderStatusChanged'::text, 'OrderCancelled'::text])))
);

ALTER TABLE write.order_events ALTER COLUMN event_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME write.order_events_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE VIEW write.order_lines_projection AS
 SELECT i.order_id,
    i.line_no,
    i.product_id,
    p.name AS product_name,
    i.quantity,
    (i.unit_price)::numeric(14,2) AS unit_price,
    (((i.quantity)::numeric * (i.unit_price)::numeric))::numeric(16,2) AS subtotal
   FROM (write.order_items i
     JOIN write.products p ON (((p.id)::text = i.product_id)));

CREATE VIEW write.order_summary_projection AS
 SELECT (o.id)::text AS order_id,
    o.customer_id,
    c.name AS customer_name,
    c.email AS customer_email,
    (i.item_count)::integer AS item_count,
    (o.total)::numeric(14,2) AS total,
    o.status,
        CASE o.status
            WHEN 'pending'::text THEN 'Pending'::text
            WHEN 'confirmed'::text THEN 'Confirmed'::text
            WHEN 'shipped'::text THEN 'Shipped'::text
            WHEN 'delivered'::text THEN 'Delivered'::text
            WHEN 'cancelled'::text THEN 'Cancelled'::text
            ELSE NULL::text
        END AS status_display,
    o.cancel_reason,
    o.version,
    o.created_at,
    o.updated_at
   FROM ((write.orders o
     JOIN write.customers c ON (((c.id)::text = o.customer_id)))
     CROSS JOIN LATERAL ( SELECT count(*) AS item_count
           FROM write.order_items it
          WHERE (it.order_id = (o.id)::text)) i);

ALTER TABLE ONLY public.refinery_schema_history
    ADD CONSTRAINT refinery_schema_history_pkey PRIMARY KEY (version);

ALTER TABLE ONLY read.order_history
    ADD CONSTRAINT order_history_pkey PRIMARY KEY (order_id, order_version);

ALTER TABLE ONLY read.order_lines
    ADD CONSTRAINT order_lines_pkey PRIMARY KEY (order_id, line_no);

ALTER TABLE ONLY read.order_summary
    ADD CONSTRAINT order_summary_pkey PRIMARY KEY (order_id);

ALTER TABLE ONLY read.read_model_status
    ADD CONSTRAINT read_model_status_pkey PRIMARY KEY (view_name);

ALTER TABLE ONLY read.refresh_log
    ADD CONSTRAINT refresh_log_pkey PRIMARY KEY (refresh_id);

ALTER TABLE ONLY write.catalog_changes
    ADD CONSTRAINT catalog_changes_pkey PRIMARY KEY (change_id);

ALTER TABLE ONLY write.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY write.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (idempotency_key);

ALTER TABLE ONLY write.order_events
    ADD CONSTRAINT order_events_one_per_version UNIQUE (order_id, order_version);

ALTER TABLE ONLY write.order_events
    ADD CONSTRAINT order_events_pkey PRIMARY KEY (event_id);

ALTER TABLE ONLY write.order_items
    ADD CONSTRAINT order_items_pkey PRIMARY KEY (order_id, line_no);

ALTER TABLE ONLY write.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);

ALTER TABLE ONLY write.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);

CREATE UNIQUE INDEX customer_orders_pkey ON read.customer_orders USING btree (customer_id);

CREATE UNIQUE INDEX daily_sales_pkey ON read.daily_sales USING btree (day, status);

CREATE INDEX order_lines_product_idx ON read.order_lines USING btree (product_id);

CREATE INDEX order_summary_created_cover_idx ON read.order_summary USING btree (created_at) INCLUDE (status, total);

CREATE INDEX order_summary_created_idx ON read.order_summary USING btree (created_at DESC, order_id DESC);

CREATE INDEX order_summary_customer_idx ON read.order_summary USING btree (customer_id, created_at DESC, order_id DESC);

CREATE INDEX order_summary_status_idx ON read.order_summary USING btree (status, created_at DESC, order_id DESC);

CREATE UNIQUE INDEX product_sales_pkey ON read.product_sales USING btree (product_id);

CREATE INDEX refresh_log_view_finished_idx ON read.refresh_log USING btree (view_name, finished_at DESC);

CREATE INDEX refresh_log_view_idx ON read.refresh_log USING btree (view_name, refresh_id DESC);

CREATE INDEX catalog_changes_source_key_idx ON write.catalog_changes USING btree (source, key);

CREATE INDEX catalog_changes_txid_change_idx ON write.catalog_changes USING btree (txid, change_id);

CREATE INDEX idempotency_keys_created_idx ON write.idempotency_keys USING btree (created_at);

CREATE INDEX order_events_txid_event_idx ON write.order_events USING btree (txid, event_id);

CREATE INDEX order_items_product_idx ON write.order_items USING btree (product_id);

CREATE INDEX orders_created_idx ON write.orders USING btree (created_at);

CREATE INDEX orders_customer_created_idx ON write.orders USING btree (customer_id, created_at DESC);

CREATE TRIGGER customers_bump_version BEFORE UPDATE ON write.customers FOR EACH ROW EXECUTE FUNCTION write.bump_version();

CREATE TRIGGER customers_record_change AFTER INSERT OR DELETE OR UPDATE ON write.customers FOR EACH ROW EXECUTE FUNCTION write.record_catalog_change();

CREATE CONSTRAINT TRIGGER order_created_event AFTER INSERT ON write.orders DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION write.order_created_event();

CREATE TRIGGER order_events_append_only BEFORE DELETE OR UPDATE ON write.order_events FOR EACH ROW EXECUTE FUNCTION write.order_events_append_only();

CREATE TRIGGER order_events_project_history AFTER INSERT ON write.order_events FOR EACH ROW EXECUTE FUNCTION write.project_order_history();

CREATE TRIGGER order_items_immutable BEFORE DELETE OR UPDATE ON write.order_items FOR EACH ROW EXECUTE FUNCTION write.order_items_immutable();

CREATE TRIGGER order_items_only_with_new_order AFTER INSERT ON write.order_items REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION write.order_items_only_with_new_order();

CREATE TRIGGER order_status_event AFTER UPDATE ON write.orders FOR EACH ROW EXECUTE FUNCTION write.order_status_event();

CREATE TRIGGER orders_guard BEFORE INSERT OR UPDATE ON write.orders FOR EACH ROW EXECUTE FUNCTION write.orders_guard();

CREATE TRIGGER products_bump_version BEFORE UPDATE ON write.products FOR EACH ROW EXECUTE FUNCTION write.bump_version();

CREATE TRIGGER products_record_change AFTER INSERT OR DELETE OR UPDATE ON write.products FOR EACH ROW EXECUTE FUNCTION write.record_catalog_change();

ALTER TABLE ONLY write.order_events
    ADD CONSTRAINT order_events_order_id_fkey FOREIGN KEY (order_id) REFERENCES write.orders(id);

ALTER TABLE ONLY write.order_items
    ADD CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES write.orders(id);

ALTER TABLE ONLY write.order_items
    ADD CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES write.products(id);

ALTER TABLE ONLY write.orders
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES write.customers(id);
