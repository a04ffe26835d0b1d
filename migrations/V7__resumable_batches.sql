-- Read models that no backlog, restore or catalog edit can stop.
--
-- 1. Snapshots that know their cluster. A recorded snapshot is a set of
--    transaction ids of one cluster. After a dump and restore into another
--    cluster (an upgrade by dump, a disaster recovery, a logical-replication
--    cut-over) the new cluster's counter can be behind, and its new
--    transactions would look covered. Each freshness row now records the
--    cluster it was taken on (pg_control_system().system_identifier); the
--    refresher re-synchronises a read model whose row names another cluster
--    or a snapshot ahead of the current one, and the query side treats such
--    a row as covering nothing until then.
-- 2. Bounded, resumable batches. A batch applies at most a bounded slice of
--    the backlog, in transaction order, and records a snapshot covering
--    exactly the transactions it applied in full (pgcqrs.snapshot_advance)
--    plus a cursor inside the one it stopped in. A backlog of any size is
--    caught up in steps; min_token stays exact.
-- 3. Change-aware re-projection. A catalog change records which columns it
--    changed, so a price change no longer re-projects order lines that do
--    not show prices.
-- See docs/decisions/0005-bounded-batches-and-restores.md.

CREATE SCHEMA IF NOT EXISTS pgcqrs;
COMMENT ON SCHEMA pgcqrs IS 'pgcqrs internals: functions the refresher uses. Not for reporting tools.';

-- The snapshot that covers what `covered` covers plus every transaction
-- below `upto` that `now` sees: the coverage after a batch that applied, in
-- full, every change of the transactions below `upto` visible in `now`.
-- `covered` must be older than `now` on the same cluster (so everything it
-- sees, `now` sees). NULL `upto`: everything `now` sees.
CREATE FUNCTION pgcqrs.snapshot_advance(covered pg_snapshot, now pg_snapshot, upto xid8)
RETURNS pg_snapshot
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
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

COMMENT ON FUNCTION pgcqrs.snapshot_advance(pg_snapshot, pg_snapshot, xid8) IS
    'Coverage after a batch: what the first snapshot covers plus every transaction below upto that the second sees.';

-- This cluster's identity, for freshness rows. NULL where a managed service
-- withholds pg_control_system(): then only the horizon check below guards
-- against a restored snapshot.
CREATE FUNCTION pgcqrs.cluster_id() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT system_identifier FROM pg_control_system());
EXCEPTION WHEN insufficient_privilege OR undefined_function THEN
    RETURN NULL;
END
$$;

-- Whether a recorded snapshot can be trusted on this cluster: taken here,
-- and not ahead of the present.
CREATE FUNCTION pgcqrs.snapshot_trusted(covers pg_snapshot, taken_on bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT taken_on IS NOT DISTINCT FROM pgcqrs.cluster_id()
       AND pg_snapshot_xmax(covers) <= pg_snapshot_xmax(pg_current_snapshot())
$$;

GRANT USAGE ON SCHEMA pgcqrs TO pgcqrs_reader;
GRANT EXECUTE ON FUNCTION pgcqrs.cluster_id(), pgcqrs.snapshot_trusted(pg_snapshot, bigint) TO pgcqrs_reader;

ALTER TABLE read.read_model_status
    ADD COLUMN cluster_id   bigint,
    -- Inside the transaction a batch stopped in (not covered by
    -- current_as_of), the changes up to this position are applied already.
    ADD COLUMN resume_txid  xid8,
    ADD COLUMN resume_src   smallint,
    ADD COLUMN resume_seq   bigint,
    ADD COLUMN resume_key   text,
    -- Changes waiting when the last batch or refresh finished.
    ADD COLUMN backlog      bigint;

UPDATE read.read_model_status SET cluster_id = pgcqrs.cluster_id();

COMMENT ON COLUMN read.read_model_status.cluster_id IS 'System identifier of the cluster current_as_of was taken on: a snapshot from another cluster (after a restore) is not trusted.';
COMMENT ON COLUMN read.read_model_status.resume_txid IS 'A transaction the last batch applied only in part (it is not in current_as_of).';
COMMENT ON COLUMN read.read_model_status.resume_src IS 'With resume_txid: the change source (0 orders, 1 catalog) of the last change applied.';
COMMENT ON COLUMN read.read_model_status.resume_seq IS 'With resume_txid: the sequence number of the last change applied.';
COMMENT ON COLUMN read.read_model_status.resume_key IS 'With resume_txid: the key (order) of the last change applied.';
COMMENT ON COLUMN read.read_model_status.backlog IS 'Changes not yet applied when the last batch or refresh finished.';

ALTER TABLE read.refresh_log
    -- batch, refresh (a full REFRESH or recomputation), rebuild, resync (after a restore)
    ADD COLUMN kind    text,
    -- Change records the batch applied.
    ADD COLUMN changes bigint,
    -- Change records still waiting after it.
    ADD COLUMN backlog bigint;

COMMENT ON COLUMN read.refresh_log.kind IS 'batch (changes applied incrementally), refresh (recomputed whole), rebuild (refilled from empty) or resync (recomputed after a restore from another cluster).';
COMMENT ON COLUMN read.refresh_log.changes IS 'Change records (events, catalog changes) applied.';
COMMENT ON COLUMN read.refresh_log.backlog IS 'Change records still waiting after this refresh.';

-- Recent refreshes of one view, for the catch-up rate.
CREATE INDEX refresh_log_view_finished_idx ON read.refresh_log (view_name, finished_at DESC);

-- Changes are taken in (txid, sequence) order: the indexes give that order.
CREATE INDEX order_events_txid_event_idx ON write.order_events (txid, event_id);
DROP INDEX write.order_events_txid_idx;
CREATE INDEX catalog_changes_txid_change_idx ON write.catalog_changes (txid, change_id);
DROP INDEX write.catalog_changes_txid_idx;

-- Which columns a catalog change touched (NULL: the row was added or
-- removed, so every column). An update that changed nothing is not recorded.
ALTER TABLE write.catalog_changes ADD COLUMN columns text[];
COMMENT ON COLUMN write.catalog_changes.columns IS 'Columns the update changed; empty for an insert or delete (every column).';

CREATE OR REPLACE FUNCTION write.record_catalog_change() RETURNS trigger
LANGUAGE plpgsql AS $$
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
