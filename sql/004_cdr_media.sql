-- tollgate schema, migration 004: media statistics in the CDR.
--
-- tg_settle_media settles a call exactly as tg_settle (002) does, in the
-- same round trip, and stores the call's media statistics (packets, bytes,
-- loss and jitter per stream and direction, what RTCP reported) as JSON in
-- cdrs.media.  A repeated settlement of the same call changes nothing but
-- may fill a media column that is still empty.

CREATE FUNCTION tg_settle_media(p_call_id TEXT, p_account_id BIGINT,
                                p_caller TEXT, p_callee TEXT,
                                p_gateway TEXT, p_setup_ms BIGINT,
                                p_answer_ms BIGINT, p_end_ms BIGINT,
                                p_billed INTEGER, p_cost BIGINT,
                                p_sip_code INTEGER, p_hangup_by TEXT,
                                p_reason TEXT, p_media JSONB)
RETURNS TABLE (result TEXT, refunded BIGINT, balance BIGINT)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
        SELECT s.result, s.refunded, s.balance
          FROM tg_settle(p_call_id, p_account_id, p_caller, p_callee,
                         p_gateway, p_setup_ms, p_answer_ms, p_end_ms,
                         p_billed, p_cost, p_sip_code, p_hangup_by,
                         p_reason) AS s;

    IF p_media IS NOT NULL THEN
        UPDATE cdrs SET media = p_media
         WHERE call_id = p_call_id AND media IS NULL;
    END IF;
END
$$;
