-- tollgate schema, migration 013: node leases and takeover.
--
-- Every running node holds a lease on its row of nodes, renewed with each
-- heartbeat; expiry is reckoned on the database's clock only (now()).
--
--   tg_lease_claim    take the lease of a name at start (or again after
--                     losing it): it is granted if the row is free (no
--                     instance), expired, this instance's already, or held
--                     with the same lock_key (host name and state_dir) by
--                     a process the caller proved dead (p_lock_free: it
--                     got the flock of state_dir/node.lock without
--                     waiting).  Else it returns the holder.
--   tg_lease_renew    false once the lease is no longer this instance's
--                     (another node took its calls over, or another
--                     process claimed the expired name)
--   tg_lease_release  clean exit: the name is free at once, unless the
--                     node still has live calls (then its lease expires
--                     and a survivor settles them)
--   tg_takeover       a survivor whose own lease is valid takes every
--                     expired node (FOR UPDATE SKIP LOCKED: exactly one
--                     survivor gets each), frees its lease, moves its
--                     live calls to itself and returns them to be settled
--                     (reason 'recovered'); node_takeovers keeps, per
--                     call, the node it came from and the last moment
--                     that node was known alive.  p_again: the answer to
--                     the last call was lost, return what it moved here
--                     and is not settled yet as well
--   tg_lease_lost     which of the calls a returning node still holds
--                     were settled, or are being settled, by someone else

ALTER TABLE nodes
    ADD COLUMN lock_key   TEXT,
    ADD COLUMN renewed_at TIMESTAMPTZ;

CREATE TABLE node_takeovers (
    call_id   TEXT PRIMARY KEY,
    node      TEXT NOT NULL,          -- the node that died
    survivor  TEXT NOT NULL,          -- the node that settles the call
    alive_at  TIMESTAMPTZ NOT NULL,   -- charged up to here
    taken_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX node_takeovers_node ON node_takeovers (node);


CREATE FUNCTION tg_lease_claim(p_name TEXT, p_instance TEXT, p_sip TEXT,
                               p_api TEXT, p_lock_key TEXT,
                               p_seconds INTEGER, p_lock_free BOOLEAN)
RETURNS TABLE (claimed BOOLEAN, instance TEXT, sip_addr TEXT,
               api_addr TEXT, since_ms BIGINT, until_ms BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    n nodes%ROWTYPE;
BEGIN
    IF p_seconds IS NULL OR p_seconds < 1 THEN
        RAISE EXCEPTION 'tg_lease_claim: lease of % s for node %',
            p_seconds, p_name;
    END IF;
    IF p_instance IS NULL OR p_instance = '' THEN
        RAISE EXCEPTION 'tg_lease_claim: no instance for node %', p_name;
    END IF;

    INSERT INTO nodes (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
    SELECT * INTO n FROM nodes WHERE nodes.name = p_name FOR UPDATE;

    IF n.instance IS NULL OR n.instance = p_instance
       OR n.lease_until IS NULL OR n.lease_until < now()
       OR (p_lock_free AND n.lock_key = p_lock_key) THEN
        -- seen_at stays: the start-up recovery of a crashed run charges
        -- its calls up to the last heartbeat
        UPDATE nodes
           SET instance = p_instance, sip_addr = p_sip, api_addr = p_api,
               lock_key = p_lock_key,
               started_at = CASE WHEN n.instance = p_instance
                                 THEN n.started_at ELSE now() END,
               lease_until = now() + p_seconds * interval '1 s',
               renewed_at = now()
         WHERE nodes.name = p_name
        RETURNING nodes.instance, nodes.sip_addr, nodes.api_addr,
                  (extract(epoch FROM nodes.started_at) * 1000)::bigint,
                  (extract(epoch FROM nodes.lease_until) * 1000)::bigint
             INTO instance, sip_addr, api_addr, since_ms, until_ms;

        -- what survivors took over from this name is settled
        DELETE FROM node_takeovers t
         WHERE t.node = p_name
           AND NOT EXISTS (SELECT 1 FROM live_calls l
                            WHERE l.call_id = t.call_id);
        claimed := true;
    ELSE
        claimed := false;
        instance := n.instance;
        sip_addr := n.sip_addr;
        api_addr := n.api_addr;
        since_ms := (extract(epoch FROM n.started_at) * 1000)::bigint;
        until_ms := (extract(epoch FROM n.lease_until) * 1000)::bigint;
    END IF;

    RETURN NEXT;
END
$$;


CREATE FUNCTION tg_lease_renew(p_name TEXT, p_instance TEXT,
                               p_seconds INTEGER)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    UPDATE nodes
       SET lease_until = now() + GREATEST(p_seconds, 1) * interval '1 s',
           renewed_at = now()
     WHERE name = p_name AND instance = p_instance;

    RETURN FOUND;
END
$$;


CREATE FUNCTION tg_lease_release(p_name TEXT, p_instance TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    UPDATE nodes SET instance = NULL, lease_until = NULL
     WHERE name = p_name AND instance = p_instance
       AND NOT EXISTS (SELECT 1 FROM live_calls l WHERE l.node = p_name);

    RETURN FOUND;
END
$$;


-- Rows: per node taken, one row with call_id NULL (the node), then one
-- per call, in the columns of the start-up recovery (billing/recover.c)
CREATE FUNCTION tg_takeover(p_survivor TEXT, p_instance TEXT,
                            p_again BOOLEAN)
RETURNS TABLE (call_id TEXT, account_id BIGINT, caller TEXT, callee TEXT,
               gateway TEXT, setup_ms BIGINT, answer_ms BIGINT,
               alive_ms BIGINT, reserved BIGINT, rate_id BIGINT,
               connect_fee BIGINT, price_per_minute BIGINT,
               initial_increment INTEGER, subsequent_increment INTEGER,
               node TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    d nodes%ROWTYPE;
    v_alive TIMESTAMPTZ;
BEGIN
    -- a node whose own lease is not valid takes nobody over
    PERFORM 1 FROM nodes n
     WHERE n.name = p_survivor AND n.instance = p_instance
       AND n.lease_until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- the answer to an earlier takeover was lost (the connection broke):
    -- what it moved here and is not settled yet comes again
    IF p_again THEN
        RETURN QUERY
        SELECT m.call_id, m.account_id, m.caller, m.callee, m.gateway,
               (extract(epoch FROM m.setup_at) * 1000)::bigint,
               coalesce((extract(epoch FROM m.answer_at) * 1000)::bigint, 0),
               (extract(epoch FROM t.alive_at) * 1000)::bigint,
               m.reserved, coalesce(r.id, 0), coalesce(r.connect_fee, 0),
               coalesce(r.price_per_minute, 0),
               coalesce(r.initial_increment, 1),
               coalesce(r.subsequent_increment, 1), t.node
          FROM live_calls m
          JOIN node_takeovers t ON t.call_id = m.call_id
                               AND t.survivor = p_survivor
         WHERE m.node = p_survivor
         ORDER BY m.setup_at;
    END IF;

    FOR d IN SELECT * FROM nodes n
              WHERE n.name <> p_survivor AND n.instance IS NOT NULL
                AND n.lease_until < now()
              ORDER BY n.name
                FOR UPDATE SKIP LOCKED
    LOOP
        v_alive := GREATEST(d.seen_at, d.renewed_at);

        UPDATE nodes n SET instance = NULL, lease_until = NULL
         WHERE n.name = d.name;

        call_id := NULL; account_id := NULL; caller := NULL;
        callee := NULL; gateway := NULL; setup_ms := NULL;
        answer_ms := NULL; reserved := NULL; rate_id := NULL;
        connect_fee := NULL; price_per_minute := NULL;
        initial_increment := NULL; subsequent_increment := NULL;
        alive_ms := (extract(epoch FROM v_alive) * 1000)::bigint;
        node := d.name;
        RETURN NEXT;

        -- the calls' rows in (account id, call id) order, as everywhere
        INSERT INTO node_takeovers (call_id, node, survivor, alive_at)
        SELECT l.call_id, d.name, p_survivor, GREATEST(v_alive, l.seen_at)
          FROM live_calls l WHERE l.node = d.name
         ORDER BY l.account_id, l.call_id
        ON CONFLICT ON CONSTRAINT node_takeovers_pkey DO UPDATE
           SET node = EXCLUDED.node, survivor = EXCLUDED.survivor,
               alive_at = EXCLUDED.alive_at, taken_at = now();

        RETURN QUERY
        WITH locked AS (
            SELECT l.call_id FROM live_calls l
             WHERE l.node = d.name
             ORDER BY l.account_id, l.call_id
               FOR UPDATE OF l
        ), moved AS (
            UPDATE live_calls l SET node = p_survivor
              FROM locked WHERE l.call_id = locked.call_id
            RETURNING l.*
        )
        SELECT m.call_id, m.account_id, m.caller, m.callee, m.gateway,
               (extract(epoch FROM m.setup_at) * 1000)::bigint,
               coalesce((extract(epoch FROM m.answer_at) * 1000)::bigint, 0),
               (extract(epoch FROM t.alive_at) * 1000)::bigint,
               m.reserved, coalesce(r.id, 0), coalesce(r.connect_fee, 0),
               coalesce(r.price_per_minute, 0),
               coalesce(r.initial_increment, 1),
               coalesce(r.subsequent_increment, 1), d.name
          FROM moved m
          JOIN node_takeovers t ON t.call_id = m.call_id
          LEFT JOIN rates r ON r.id = m.rate_id
         ORDER BY m.setup_at;
    END LOOP;
END
$$;


CREATE FUNCTION tg_lease_lost(p_name TEXT, p_ids TEXT[])
RETURNS SETOF TEXT LANGUAGE sql STABLE AS $$
    SELECT u.id FROM unnest(p_ids) AS u(id)
     WHERE EXISTS (SELECT 1 FROM cdrs c WHERE c.call_id = u.id)
        OR EXISTS (SELECT 1 FROM node_takeovers t
                    WHERE t.call_id = u.id AND t.node = p_name)
        OR EXISTS (SELECT 1 FROM live_calls l
                    WHERE l.call_id = u.id AND l.node <> p_name)
$$;
