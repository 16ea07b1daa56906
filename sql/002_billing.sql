-- tollgate schema, migration 002: prepaid billing.
--
-- Every change of money is one call of a function below, which takes the
-- account's row lock first and does all its work in the one transaction of
-- its statement:
--
--   tg_authorize  may the call start?  Account, rate (longest prefix),
--                 concurrent calls, first increment; then reserves the
--                 first interval and records the call in live_calls.  A
--                 refusal writes the call's CDR (reason 'rejected').
--   tg_reserve    reserve more for a running call (idempotent on p_seq).
--   tg_settle     end of a call: CDR, cost charged, unused reservation
--                 refunded, live_calls row gone; idempotent on the call id
--                 (a second settlement of a call changes nothing).
--   tg_heartbeat  the node is alive; answer times of new calls.
--
-- Money never goes below zero: accounts.balance has CHECK (balance >= 0)
-- and a reservation grants at most the balance.  A running call holds its
-- reservation in live_calls.reserved, already taken from the balance.
--
-- A change of an account made by anything but these functions (a top-up,
-- a credit change, a block) sends NOTIFY tollgate_account with the account
-- id as payload; tollgate LISTENs and re-arms the account's calls at once.

ALTER TABLE live_calls
    ADD COLUMN reservations INTEGER NOT NULL DEFAULT 0;

-- Nodes and when each was last known to be up (heartbeat).  After a crash
-- a node's calls are charged up to that moment.
CREATE TABLE nodes (
    name        TEXT PRIMARY KEY,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);


-- Billed seconds of d seconds on a rate (see README, "Rating").  Used only
-- to size reservations; the cost of a call is rated by tollgate.
CREATE FUNCTION tg_billed(p_d BIGINT, p_initial INTEGER, p_subsequent INTEGER)
RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_d <= 0 THEN 0
                ELSE p_initial + ((GREATEST(0, p_d - p_initial)
                     + p_subsequent - 1) / p_subsequent) * p_subsequent
           END
$$;

CREATE FUNCTION tg_cost(p_billed BIGINT, p_connect_fee BIGINT,
                        p_price_per_minute BIGINT)
RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT p_connect_fee + ceil(p_billed::numeric * p_price_per_minute / 60)::bigint
$$;


CREATE FUNCTION tg_authorize(p_call_id TEXT, p_node TEXT, p_account_id BIGINT,
                             p_caller TEXT, p_callee TEXT, p_gateway TEXT,
                             p_setup_ms BIGINT, p_interval INTEGER)
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
    v_first BIGINT;
    v_want BIGINT;
    v_grant BIGINT;
BEGIN
    PERFORM set_config('tollgate.internal', 'on', true);

    SELECT * INTO a FROM accounts WHERE id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        result := 'no_account'; sip_code := 403;
    ELSIF a.status <> 'active' THEN
        result := 'blocked'; sip_code := 403;
    ELSE
        -- a retried authorisation finds its own reservation
        SELECT * INTO l FROM live_calls WHERE call_id = p_call_id;
        IF FOUND THEN
            SELECT * INTO r FROM rates WHERE id = l.rate_id;
            result := 'ok'; sip_code := 0;
            rate_id := r.id; connect_fee := r.connect_fee;
            price_per_minute := r.price_per_minute;
            initial_increment := r.initial_increment;
            subsequent_increment := r.subsequent_increment;
            reserved := l.reserved; balance := a.balance;
            RETURN NEXT;
            RETURN;
        END IF;

        SELECT * INTO r FROM rates
         WHERE rates.rate_plan_id = a.rate_plan_id
           AND rates.valid_from <= now()
           AND left(p_callee, length(rates.prefix)) = rates.prefix
         ORDER BY length(rates.prefix) DESC, rates.valid_from DESC
         LIMIT 1;

        IF NOT FOUND THEN
            result := 'no_rate'; sip_code := 404;
        ELSE
            rate_id := r.id; connect_fee := r.connect_fee;
            price_per_minute := r.price_per_minute;
            initial_increment := r.initial_increment;
            subsequent_increment := r.subsequent_increment;

            SELECT count(*) INTO n FROM live_calls
             WHERE live_calls.account_id = a.id;
            v_first := tg_cost(r.initial_increment, r.connect_fee,
                               r.price_per_minute);

            IF n >= a.max_calls THEN
                result := 'limit'; sip_code := 486;
            ELSIF a.balance < v_first THEN
                result := 'no_credit'; sip_code := 402;
            ELSE
                v_want := tg_cost(tg_billed(GREATEST(p_interval, 1),
                                            r.initial_increment,
                                            r.subsequent_increment),
                                  r.connect_fee, r.price_per_minute);
                v_grant := LEAST(v_want, a.balance);

                UPDATE accounts SET balance = accounts.balance - v_grant,
                                    updated_at = now()
                 WHERE id = a.id;

                INSERT INTO live_calls (call_id, node, account_id, caller,
                        callee, gateway, rate_id, setup_at, reserved,
                        reservations, seen_at)
                VALUES (p_call_id, p_node, a.id, p_caller, p_callee,
                        p_gateway, r.id, to_timestamp(p_setup_ms / 1000.0),
                        v_grant, 1, now());

                result := 'ok'; sip_code := 0;
                reserved := v_grant;
                a.balance := a.balance - v_grant;
            END IF;
        END IF;
    END IF;

    balance := a.balance;

    IF result <> 'ok' THEN
        INSERT INTO cdrs (call_id, account_id, caller, callee, gateway,
                          setup_at, end_at, billed_seconds, cost, sip_code,
                          hangup_by, reason)
        VALUES (p_call_id, a.id, p_caller, p_callee, p_gateway,
                to_timestamp(p_setup_ms / 1000.0), now(), 0, 0, sip_code,
                'tollgate', 'rejected')
        ON CONFLICT (call_id) DO NOTHING;
    END IF;

    RETURN NEXT;
END
$$;


-- Reserve up to p_want more for a running call.  p_seq numbers the
-- reservations of a call (the first, by tg_authorize, is 1): a repeated
-- p_seq grants nothing again.  Returns what was granted now, the call's
-- total reservation and the balance left.
CREATE FUNCTION tg_reserve(p_call_id TEXT, p_seq INTEGER, p_want BIGINT)
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

    -- account first, then the call: the order of every function here
    SELECT * INTO a FROM accounts WHERE id = l.account_id FOR UPDATE;
    SELECT * INTO l FROM live_calls WHERE call_id = p_call_id FOR UPDATE;

    IF l.reservations >= p_seq THEN
        reserved := l.reserved; balance := a.balance;
        RETURN NEXT;
        RETURN;
    END IF;

    IF a.status = 'active' THEN
        granted := GREATEST(0, LEAST(p_want, a.balance));
    END IF;

    UPDATE accounts SET balance = accounts.balance - granted,
                        updated_at = now()
     WHERE id = a.id;
    UPDATE live_calls SET reserved = live_calls.reserved + granted,
                          reservations = p_seq, seen_at = now()
     WHERE call_id = p_call_id;

    reserved := l.reserved + granted;
    balance := a.balance - granted;
    RETURN NEXT;
END
$$;


-- Settle a call: its CDR, its cost, the refund of what it did not use.
-- Idempotent on the call id.  Result 'settled' or 'duplicate'.
CREATE FUNCTION tg_settle(p_call_id TEXT, p_account_id BIGINT, p_caller TEXT,
                          p_callee TEXT, p_gateway TEXT, p_setup_ms BIGINT,
                          p_answer_ms BIGINT, p_end_ms BIGINT,
                          p_billed INTEGER, p_cost BIGINT, p_sip_code INTEGER,
                          p_hangup_by TEXT, p_reason TEXT)
RETURNS TABLE (result TEXT, refunded BIGINT, balance BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_res BIGINT;
    v_acct BIGINT;
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
                      sip_code, hangup_by, reason)
    VALUES (p_call_id, v_acct, p_caller, p_callee, p_gateway,
            to_timestamp(p_setup_ms / 1000.0),
            CASE WHEN p_answer_ms > 0
                 THEN to_timestamp(p_answer_ms / 1000.0) END,
            to_timestamp(p_end_ms / 1000.0), p_billed, p_cost, p_sip_code,
            p_hangup_by, p_reason)
    ON CONFLICT (call_id) DO NOTHING;

    IF NOT FOUND THEN
        result := 'duplicate'; refunded := 0;
        SELECT accounts.balance INTO balance FROM accounts WHERE id = v_acct;
        RETURN NEXT;
        RETURN;
    END IF;

    DELETE FROM live_calls WHERE call_id = p_call_id
        RETURNING live_calls.reserved INTO v_res;
    v_res := coalesce(v_res, 0);

    -- the cost comes out of the reservation, the rest goes back; a cost
    -- above the reservation may only take what the balance has
    UPDATE accounts SET balance = accounts.balance + v_res - p_cost,
                        updated_at = now()
     WHERE id = v_acct
    RETURNING accounts.balance INTO balance;

    result := 'settled';
    refunded := v_res - p_cost;
    RETURN NEXT;
END
$$;


-- The node is alive; record answer times of calls answered since the last
-- beat (p_ids[i] answered at p_answer_ms[i]).
CREATE FUNCTION tg_heartbeat(p_node TEXT, p_ids TEXT[], p_answer_ms BIGINT[])
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER;
BEGIN
    INSERT INTO nodes (name) VALUES (p_node)
    ON CONFLICT (name) DO UPDATE SET seen_at = now();

    UPDATE live_calls l
       SET answer_at = to_timestamp(u.a / 1000.0), seen_at = now()
      FROM unnest(p_ids, p_answer_ms) AS u(id, a)
     WHERE l.call_id = u.id AND l.node = p_node;
    GET DIAGNOSTICS n = ROW_COUNT;

    RETURN n;
END
$$;


-- NOTIFY tollgate_account on changes made outside the functions above
CREATE FUNCTION tg_accounts_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tollgate.internal', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('tollgate_account', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_notify
    AFTER UPDATE OF balance, status, rate_plan_id, max_calls ON accounts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION tg_accounts_notify();
