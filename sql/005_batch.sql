-- tollgate schema, migration 005: row lock order for batched billing.
--
-- Under load tollgate sends waiting authorisations and settlements of
-- many calls in one statement (one round trip, one commit): each call
-- still goes through tg_authorize or tg_settle_media, in the order of
-- (account id, call id), so every batch locks accounts, then the calls'
-- live_calls rows, in that one order.  The heartbeat locks live_calls
-- rows of many calls too: it now takes them in the same (account id,
-- call id) order, so that it cannot deadlock with a batch.

CREATE OR REPLACE FUNCTION tg_heartbeat(p_node TEXT, p_ids TEXT[],
                                        p_answer_ms BIGINT[])
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER;
BEGIN
    INSERT INTO nodes (name) VALUES (p_node)
    ON CONFLICT (name) DO UPDATE SET seen_at = now();

    WITH u AS (
        SELECT * FROM unnest(p_ids, p_answer_ms) AS u(id, a)
    ), locked AS (
        SELECT l.call_id, u.a
          FROM live_calls l JOIN u ON u.id = l.call_id
         WHERE l.node = p_node
         ORDER BY l.account_id, l.call_id
           FOR UPDATE OF l
    )
    UPDATE live_calls l
       SET answer_at = to_timestamp(locked.a / 1000.0), seen_at = now()
      FROM locked
     WHERE l.call_id = locked.call_id;
    GET DIAGNOSTICS n = ROW_COUNT;

    RETURN n;
END
$$;
