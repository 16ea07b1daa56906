-- tollgate schema, migration 009: fraud limits per account.
--
-- Daily spend cap.  accounts.daily_spend_cap (micro-units, NULL = none)
-- bounds what an account spends in one UTC day: the cost of its calls
-- that ended since midnight UTC plus what its running calls hold.
-- tg_authorize refuses a new call ('spend_cap', 403) when what is left of
-- the day's cap does not cover the first increment, and grants a
-- reservation no larger than what is left; tg_reserve grants no more than
-- that either, so a running call is cut when the cap is reached.  Both
-- compute it under the account's row lock: concurrent calls of one
-- account cannot spend past the cap together.
--
-- Restricted destinations.  A number that starts with a prefix of
-- restricted_prefixes (premium rate, satellite ...) is refused
-- ('restricted', 403) unless the account has an allowed prefix
-- (account_allowed_prefixes) that the number starts with and that is at
-- least as long as the restricted one: allowing '1900' opens 1900...,
-- allowing '1' opens nothing restricted.  Numbers are the normalised
-- digits tollgate rates, without a leading '+'.

ALTER TABLE accounts
    ADD COLUMN daily_spend_cap BIGINT
        CHECK (daily_spend_cap IS NULL OR daily_spend_cap >= 0);

CREATE TABLE restricted_prefixes (
    prefix      TEXT PRIMARY KEY CHECK (prefix ~ '^[0-9]{1,32}$'),
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO restricted_prefixes (prefix, description) VALUES
    ('1900',  'premium rate (North America)'),
    ('1976',  'premium rate (North America)'),
    ('881',   'global mobile satellite systems (+881)'),
    ('882',   'international networks (+882)'),
    ('00881', 'global mobile satellite systems (00881)'),
    ('00882', 'international networks (00882)');

CREATE TABLE account_allowed_prefixes (
    account_id  BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL CHECK (prefix ~ '^[0-9]{1,32}$'),
    PRIMARY KEY (account_id, prefix)
);

-- the day's spend of an account is read by end time
CREATE INDEX cdrs_account_end ON cdrs (account_id, end_at);


-- Spent today (UTC): costs of calls that ended since midnight UTC and
-- what running calls hold now.
CREATE FUNCTION tg_spent_today(p_account_id BIGINT)
RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT (coalesce((SELECT sum(c.cost) FROM cdrs c
                       WHERE c.account_id = p_account_id
                         AND c.end_at >= date_trunc('day', now()
                                 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
                     0)
          + coalesce((SELECT sum(l.reserved) FROM live_calls l
                       WHERE l.account_id = p_account_id), 0))::bigint
$$;


-- Does the number need an allow the account does not have?
CREATE FUNCTION tg_restricted(p_account_id BIGINT, p_callee TEXT)
RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM restricted_prefixes rp
         WHERE left(p_callee, length(rp.prefix)) = rp.prefix
           AND NOT EXISTS (
               SELECT 1 FROM account_allowed_prefixes ap
                WHERE ap.account_id = p_account_id
                  AND length(ap.prefix) >= length(rp.prefix)
                  AND left(p_callee, length(ap.prefix)) = ap.prefix))
$$;


-- migration 002's tg_authorize with both limits (its batch form, see
-- 005, calls this one)
CREATE OR REPLACE FUNCTION tg_authorize(p_call_id TEXT, p_node TEXT, p_account_id BIGINT,
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
    v_room BIGINT;
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

        IF tg_restricted(a.id, p_callee) THEN
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
        ELSE
            rate_id := r.id; connect_fee := r.connect_fee;
            price_per_minute := r.price_per_minute;
            initial_increment := r.initial_increment;
            subsequent_increment := r.subsequent_increment;

            SELECT count(*) INTO n FROM live_calls
             WHERE live_calls.account_id = a.id;
            v_first := tg_cost(r.initial_increment, r.connect_fee,
                               r.price_per_minute);

            -- what the day's cap still allows (NULL: no cap); the
            -- account's row lock makes it exact among concurrent calls
            v_room := CASE WHEN a.daily_spend_cap IS NOT NULL THEN
                           GREATEST(0, a.daily_spend_cap
                                       - tg_spent_today(a.id)) END;

            IF n >= a.max_calls THEN
                result := 'limit'; sip_code := 486;
            ELSIF v_room IS NOT NULL AND v_room < GREATEST(v_first, 1) THEN
                result := 'spend_cap'; sip_code := 403;
            ELSIF a.balance < v_first THEN
                result := 'no_credit'; sip_code := 402;
            ELSE
                v_want := tg_cost(tg_billed(GREATEST(p_interval, 1),
                                            r.initial_increment,
                                            r.subsequent_increment),
                                  r.connect_fee, r.price_per_minute);
                v_grant := LEAST(v_want, a.balance,
                                 coalesce(v_room, v_want));

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



-- migration 002's tg_reserve, within the day's cap
CREATE OR REPLACE FUNCTION tg_reserve(p_call_id TEXT, p_seq INTEGER, p_want BIGINT)
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
        granted := GREATEST(0, LEAST(p_want, a.balance,
                    CASE WHEN a.daily_spend_cap IS NULL THEN p_want
                         ELSE a.daily_spend_cap - tg_spent_today(a.id)
                    END));
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


-- a new cap re-arms the account's running calls
DROP TRIGGER accounts_notify ON accounts;
CREATE TRIGGER accounts_notify
    AFTER UPDATE OF balance, status, rate_plan_id, max_calls,
                    daily_spend_cap ON accounts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION tg_accounts_notify();


-- An account's limits as the REST API shows them: no row if there is no
-- such account.  allowed_prefixes is comma-separated, ascending.
CREATE FUNCTION tg_limits_get(p_account_id BIGINT)
RETURNS TABLE (account_id BIGINT, daily_spend_cap BIGINT,
               spent_today BIGINT, allowed_prefixes TEXT)
LANGUAGE sql STABLE AS $$
    SELECT a.id, a.daily_spend_cap, tg_spent_today(a.id),
           coalesce((SELECT string_agg(p.prefix, ',' ORDER BY p.prefix)
                       FROM account_allowed_prefixes p
                      WHERE p.account_id = a.id), '')
      FROM accounts a WHERE a.id = p_account_id
$$;


-- Change an account's limits in one transaction: the cap if p_set_cap,
-- the allowed prefixes (replaced as a whole) if p_set_prefixes.
CREATE FUNCTION tg_limits_set(p_account_id BIGINT, p_set_cap BOOLEAN,
                              p_cap BIGINT, p_set_prefixes BOOLEAN,
                              p_prefixes TEXT[])
RETURNS TABLE (account_id BIGINT, daily_spend_cap BIGINT,
               spent_today BIGINT, allowed_prefixes TEXT)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts a WHERE a.id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    IF p_set_cap THEN
        UPDATE accounts a SET daily_spend_cap = p_cap, updated_at = now()
         WHERE a.id = p_account_id;
    END IF;

    IF p_set_prefixes THEN
        DELETE FROM account_allowed_prefixes p
         WHERE p.account_id = p_account_id;
        INSERT INTO account_allowed_prefixes (account_id, prefix)
        SELECT DISTINCT p_account_id, u
          FROM unnest(coalesce(p_prefixes, '{}'::TEXT[])) AS u;
    END IF;

    RETURN QUERY SELECT * FROM tg_limits_get(p_account_id);
END
$$;
