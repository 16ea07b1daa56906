-- tollgate schema, migration 015: less PostgreSQL work per call.
--
-- Measured per call at 1,500 calls/s (tests/bench/billing-bench.sh
-- profile), the money functions spent most of their time not on the
-- money but on the ledger's machinery: every UPDATE of a balance ran the
-- row trigger tg_ledger_balance(), which read five settings, cleared
-- them with five more set_config() calls and wrote each ledger row
-- through one more SQL function, and a settlement inserted its CDR and
-- then updated it again for the media statistics (a second CDR version
-- and a second entry in each of its indexes).
--
-- Now:
--   - tg_authorize, tg_reserve and tg_settle write their ledger rows
--     themselves, all rows of one balance change with one INSERT, next
--     to the UPDATE they belong to.  Around that UPDATE the setting
--     tollgate.ledger is 'own' and the row trigger does not fire (its
--     WHEN clause); it is cleared right after, so any other change of a
--     balance -- the REST API's credit, tg_release, an UPDATE typed in
--     psql, also later in the same transaction -- still gets its rows
--     from the trigger as before (sql/011_ledger.sql).  The rows and
--     their kinds are the ones the trigger wrote: every balance change
--     is in the ledger exactly once, and tg_ledger_check() holds.
--   - tg_accounts_notify() is not called at all for the billing
--     functions' own updates (tollgate.internal in the WHEN clause).
--   - tg_settle_media() inserts the CDR with its media statistics; the
--     13-argument tg_settle is tg_settle_media without media.
--   - three index entries fewer per call: ledger_ref goes (the per-call
--     sums of tg_ledger_check read the whole ledger anyway; a call's
--     rows are found through its account, ledger_account).
--   - accounts and live_calls leave room in each page (fillfactor), so
--     that balance and reservation updates stay HOT: no new index
--     entries for a new row version.
-- Signatures, results, row locks (the account, then the call) and the
-- ledger rows written are those of migration 011.


-- ---------------------------------------------------------- tables, indexes

DROP INDEX IF EXISTS ledger_ref;

ALTER TABLE accounts SET (fillfactor = 50);
ALTER TABLE live_calls SET (fillfactor = 70);


-- ---------------------------------------------------------------- triggers

DROP TRIGGER accounts_ledger_balance ON accounts;
CREATE TRIGGER accounts_ledger_balance
    AFTER UPDATE OF balance ON accounts
    FOR EACH ROW
    WHEN (current_setting('tollgate.ledger', true) IS DISTINCT FROM 'own')
    EXECUTE FUNCTION tg_ledger_balance();

DROP TRIGGER accounts_notify ON accounts;
CREATE TRIGGER accounts_notify
    AFTER UPDATE OF balance, status, rate_plan_id, max_calls,
                    daily_spend_cap, credit_limit ON accounts
    FOR EACH ROW
    WHEN (current_setting('tollgate.internal', true) IS DISTINCT FROM 'on'
          AND OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION tg_accounts_notify();


-- -------------------------------------------------------------- authorise

CREATE OR REPLACE FUNCTION tg_authorize(p_call_id TEXT, p_node TEXT,
                                        p_account_id BIGINT,
                                        p_caller TEXT, p_callee TEXT,
                                        p_gateway TEXT, p_setup_ms BIGINT,
                                        p_interval INTEGER)
RETURNS TABLE (result TEXT, sip_code INTEGER, rate_id BIGINT,
               connect_fee BIGINT, price_per_minute BIGINT,
               initial_increment INTEGER, subsequent_increment INTEGER,
               reserved BIGINT, balance BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    a accounts%ROWTYPE;
    r rates%ROWTYPE;
    l live_calls%ROWTYPE;
    n INTEGER;
    v_avail NUMERIC;       -- balance + credit limit, never overflows
    v_first BIGINT;
    v_want BIGINT;
    v_grant BIGINT;
    v_room BIGINT;
BEGIN
    PERFORM set_config('tollgate.internal', 'on', true);

    -- the account first, then the call
    SELECT * INTO a FROM accounts WHERE id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        result := 'no_account'; sip_code := 403;
        PERFORM tg_reject(p_call_id, NULL, p_caller, p_callee, p_gateway,
                          p_setup_ms, sip_code);
        RETURN NEXT;
        RETURN;
    END IF;

    balance := a.balance;

    -- the call is over already (its settlement came first): nothing is
    -- held for it, a reservation made after its end goes back, and it
    -- keeps the CDR it has
    PERFORM 1 FROM cdrs WHERE cdrs.call_id = p_call_id;
    IF FOUND THEN
        IF tg_release(p_call_id) IS NOT NULL THEN
            SELECT accounts.balance INTO balance FROM accounts
             WHERE id = a.id;
        END IF;
        result := 'ended'; sip_code := 503;
        RETURN NEXT;
        RETURN;
    END IF;

    -- a retried authorisation finds its own reservation, whatever
    -- happened to the account since the first try
    SELECT * INTO l FROM live_calls WHERE call_id = p_call_id FOR UPDATE;
    IF FOUND THEN
        SELECT * INTO r FROM rates WHERE id = l.rate_id;
        result := 'ok'; sip_code := 0;
        rate_id := r.id; connect_fee := r.connect_fee;
        price_per_minute := r.price_per_minute;
        initial_increment := r.initial_increment;
        subsequent_increment := r.subsequent_increment;
        reserved := l.reserved;
        RETURN NEXT;
        RETURN;
    END IF;

    IF a.status <> 'active' THEN
        result := 'blocked'; sip_code := 403;
    ELSIF tg_restricted(a.id, p_callee) THEN
        result := 'restricted'; sip_code := 403;
    ELSE
        SELECT * INTO r FROM rates
         WHERE rates.rate_plan_id = a.rate_plan_id
           AND rates.valid_from <= now()
           AND left(p_callee, length(rates.prefix)) = rates.prefix
         ORDER BY length(rates.prefix) DESC, rates.valid_from DESC
         LIMIT 1;
        IF NOT FOUND THEN
            result := 'no_rate'; sip_code := 404;
        END IF;
    END IF;

    IF result IS NOT NULL THEN
        PERFORM tg_reject(p_call_id, a.id, p_caller, p_callee, p_gateway,
                          p_setup_ms, sip_code);
        RETURN NEXT;
        RETURN;
    END IF;

    rate_id := r.id; connect_fee := r.connect_fee;
    price_per_minute := r.price_per_minute;
    initial_increment := r.initial_increment;
    subsequent_increment := r.subsequent_increment;

    SELECT count(*) INTO n FROM live_calls
     WHERE live_calls.account_id = a.id;
    v_first := tg_cost(r.initial_increment, r.connect_fee,
                       r.price_per_minute);
    v_avail := a.balance::numeric + a.credit_limit;

    -- what the day's cap still allows (NULL: no cap); the account's row
    -- lock makes it exact among concurrent calls
    v_room := CASE WHEN a.daily_spend_cap IS NOT NULL THEN
                   GREATEST(0, a.daily_spend_cap - tg_spent_today(a.id))
              END;

    IF n >= a.max_calls THEN
        result := 'limit'; sip_code := 486;
    ELSIF v_room IS NOT NULL AND v_room < GREATEST(v_first, 1) THEN
        result := 'spend_cap'; sip_code := 403;
    ELSIF v_avail < v_first THEN
        result := 'no_credit'; sip_code := 402;
    END IF;

    IF result IS NOT NULL THEN
        PERFORM tg_reject(p_call_id, a.id, p_caller, p_callee, p_gateway,
                          p_setup_ms, sip_code);
        RETURN NEXT;
        RETURN;
    END IF;

    v_want := tg_cost(tg_billed(GREATEST(p_interval, 1),
                                r.initial_increment, r.subsequent_increment),
                      r.connect_fee, r.price_per_minute);
    v_grant := LEAST(v_want, v_avail, coalesce(v_room, v_want));

    -- the ledger row is written here, not by the trigger
    PERFORM set_config('tollgate.ledger', 'own', true);
    UPDATE accounts SET balance = accounts.balance - v_grant,
                        updated_at = now()
     WHERE id = a.id;
    PERFORM set_config('tollgate.ledger', '', true);
    IF v_grant <> 0 THEN
        INSERT INTO ledger (account_id, delta, kind, ref)
        VALUES (a.id, -v_grant, 'reservation', p_call_id);
    END IF;

    INSERT INTO live_calls (call_id, node, account_id, caller, callee,
                            gateway, rate_id, setup_at, reserved,
                            reservations, seen_at)
    VALUES (p_call_id, p_node, a.id, p_caller, p_callee, p_gateway, r.id,
            to_timestamp(p_setup_ms / 1000.0), v_grant, 1, now());

    result := 'ok'; sip_code := 0;
    reserved := v_grant;
    balance := a.balance - v_grant;
    RETURN NEXT;
END
$$;


-- ---------------------------------------------------------------- reserve

CREATE OR REPLACE FUNCTION tg_reserve(p_call_id TEXT, p_seq INTEGER,
                                      p_want BIGINT)
RETURNS TABLE (granted BIGINT, reserved BIGINT, balance BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    a accounts%ROWTYPE;
    l live_calls%ROWTYPE;
BEGIN
    PERFORM set_config('tollgate.internal', 'on', true);

    granted := 0; reserved := 0; balance := 0;

    SELECT * INTO l FROM live_calls WHERE call_id = p_call_id;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;

    -- the account first, then the call: the order of every function here
    SELECT * INTO a FROM accounts WHERE id = l.account_id FOR UPDATE;
    balance := a.balance;

    -- settled while this waited for the account: nothing to reserve for
    SELECT * INTO l FROM live_calls WHERE call_id = p_call_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;

    reserved := l.reserved;
    IF l.reservations >= p_seq THEN
        RETURN NEXT;
        RETURN;
    END IF;

    IF a.status = 'active' THEN
        granted := GREATEST(0, LEAST(p_want,
                    a.balance::numeric + a.credit_limit,
                    CASE WHEN a.daily_spend_cap IS NULL THEN p_want
                         ELSE a.daily_spend_cap - tg_spent_today(a.id)
                    END));
    END IF;

    PERFORM set_config('tollgate.ledger', 'own', true);
    UPDATE accounts SET balance = accounts.balance - granted,
                        updated_at = now()
     WHERE id = a.id;
    PERFORM set_config('tollgate.ledger', '', true);
    IF granted <> 0 THEN
        INSERT INTO ledger (account_id, delta, kind, ref)
        VALUES (a.id, -granted, 'reservation', p_call_id);
    END IF;

    UPDATE live_calls SET reserved = live_calls.reserved + granted,
                          reservations = p_seq, seen_at = now()
     WHERE call_id = p_call_id;

    reserved := l.reserved + granted;
    balance := a.balance - granted;
    RETURN NEXT;
END
$$;


-- ----------------------------------------------------------------- settle

-- Settle a call with its media statistics (NULL: none): its CDR, its
-- cost, the refund of what it did not use.  Idempotent on the call id.
-- Result 'settled' or 'duplicate'; refunded is what went back to the
-- balance beyond the cost.  A duplicate settlement still fills in the
-- media of a CDR written without them.
CREATE OR REPLACE FUNCTION tg_settle_media(p_call_id TEXT,
                                           p_account_id BIGINT,
                                           p_caller TEXT, p_callee TEXT,
                                           p_gateway TEXT, p_setup_ms BIGINT,
                                           p_answer_ms BIGINT,
                                           p_end_ms BIGINT,
                                           p_billed INTEGER, p_cost BIGINT,
                                           p_sip_code INTEGER,
                                           p_hangup_by TEXT, p_reason TEXT,
                                           p_media JSONB)
RETURNS TABLE (result TEXT, refunded BIGINT, balance BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_acct BIGINT;
    v_lacct BIGINT;
    v_res BIGINT;
    v_forfeit BIGINT;
    v_lost BIGINT;
BEGIN
    PERFORM set_config('tollgate.internal', 'on', true);

    IF p_cost < 0 THEN
        RAISE EXCEPTION 'tg_settle: negative cost % for call %',
            p_cost, p_call_id;
    END IF;

    v_acct := NULLIF(p_account_id, 0);
    IF v_acct IS NOT NULL THEN
        PERFORM 1 FROM accounts WHERE id = v_acct FOR UPDATE;
    END IF;

    INSERT INTO cdrs (call_id, account_id, caller, callee, gateway,
                      setup_at, answer_at, end_at, billed_seconds, cost,
                      sip_code, hangup_by, reason, media)
    VALUES (p_call_id, v_acct, p_caller, p_callee, p_gateway,
            to_timestamp(p_setup_ms / 1000.0),
            CASE WHEN p_answer_ms > 0
                 THEN to_timestamp(p_answer_ms / 1000.0) END,
            to_timestamp(p_end_ms / 1000.0), p_billed, p_cost, p_sip_code,
            p_hangup_by, p_reason, p_media)
    ON CONFLICT (call_id) DO NOTHING;

    IF NOT FOUND THEN
        -- settled before.  A live row of the call is a reservation made
        -- after its CDR (a late authorisation or reservation): it goes,
        -- with a refund of what it held, and nothing is charged again
        result := 'duplicate';

        SELECT l.account_id INTO v_lacct FROM live_calls l
         WHERE l.call_id = p_call_id;
        refunded := coalesce(tg_release(p_call_id), 0);

        IF p_media IS NOT NULL THEN
            UPDATE cdrs SET media = p_media
             WHERE call_id = p_call_id AND media IS NULL;
        END IF;

        SELECT accounts.balance INTO balance FROM accounts
         WHERE id = coalesce(v_acct, v_lacct);
        RETURN NEXT;
        RETURN;
    END IF;

    DELETE FROM live_calls WHERE call_id = p_call_id
        RETURNING live_calls.reserved, live_calls.forfeit
             INTO v_res, v_forfeit;
    v_res := coalesce(v_res, 0);
    v_forfeit := coalesce(v_forfeit, 0);

    -- the cost comes out of the reservation and the rest goes back, but
    -- for what a credit set made non-refundable beyond the cost
    v_lost := GREATEST(0, v_forfeit - p_cost);
    refunded := v_res - p_cost - v_lost;

    IF v_acct IS NOT NULL THEN
        PERFORM set_config('tollgate.ledger', 'own', true);
        UPDATE accounts SET balance = accounts.balance + refunded,
                            updated_at = now()
         WHERE id = v_acct
        RETURNING accounts.balance INTO balance;
        PERFORM set_config('tollgate.ledger', '', true);
        -- the rows the trigger wrote for a settlement: refund, call_cost,
        -- forfeit, none of zero
        INSERT INTO ledger (account_id, delta, kind, ref)
        SELECT v_acct, v.delta, v.kind, p_call_id
          FROM (VALUES (1, v_res, 'refund'), (2, -p_cost, 'call_cost'),
                       (3, -v_lost, 'forfeit')) AS v(o, delta, kind)
         WHERE v.delta <> 0
         ORDER BY v.o;
    END IF;

    result := 'settled';
    RETURN NEXT;
END
$$;


CREATE OR REPLACE FUNCTION tg_settle(p_call_id TEXT, p_account_id BIGINT,
                                     p_caller TEXT, p_callee TEXT,
                                     p_gateway TEXT, p_setup_ms BIGINT,
                                     p_answer_ms BIGINT, p_end_ms BIGINT,
                                     p_billed INTEGER, p_cost BIGINT,
                                     p_sip_code INTEGER, p_hangup_by TEXT,
                                     p_reason TEXT)
RETURNS TABLE (result TEXT, refunded BIGINT, balance BIGINT)
LANGUAGE sql AS $$
    SELECT s.result, s.refunded, s.balance
      FROM tg_settle_media(p_call_id, p_account_id, p_caller, p_callee,
                           p_gateway, p_setup_ms, p_answer_ms, p_end_ms,
                           p_billed, p_cost, p_sip_code, p_hangup_by,
                           p_reason, NULL) AS s;
$$;
