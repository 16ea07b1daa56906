-- tollgate schema, migration 011: the money ledger, credit set against
-- running calls, postpaid accounts.
--
-- The ledger.  Every change of accounts.balance writes rows of `ledger`
-- in the same transaction, by triggers on accounts, so that nothing that
-- changes a balance (these functions, the REST API, an UPDATE typed in
-- psql) can leave it out.  The table is append-only: UPDATE and DELETE
-- of its rows are refused (TRUNCATE is not).  A row is
--
--   account_id, delta   how the balance moved (+ in, - out)
--   kind                why:
--     open         the balance an account was created with (and, at this
--                  migration, the balance every existing account had:
--                  see the back-fill at the end)
--     credit_add   tg_credit 'add' (ref: the Idempotency-Key, or NULL)
--     credit_set   tg_credit 'set': the new balance minus the old one
--     reservation  money a call takes to run on (tg_authorize,
--                  tg_reserve; ref: the call id)
--     refund       at settlement, what the call's reservation held, back
--     call_cost    at settlement, what the call cost (ref: the call id)
--     forfeit      at settlement, the part of the reservation a credit
--                  set made non-refundable that the cost did not use
--     manual       anything else, e.g. an UPDATE of accounts from psql
--
-- A function says what its UPDATE of accounts is with tg_ledger_note(),
-- which puts kind and ref (and for a settlement the reservation released,
-- the cost and the forfeit) into transaction-local settings tollgate.*;
-- the trigger takes them, clears them, and writes one row, or for a
-- settlement up to three rows (refund, call_cost, forfeit) of the one
-- UPDATE, which must add up to its delta.  Without a note the row is
-- 'manual'.  Rows of zero are not written.
--
-- Invariants (tg_ledger_check() lists every violation):
--   - an account's balance is the sum of its ledger rows;
--   - for a settled call (its row in cdrs) the reservation, refund and
--     call_cost rows of its call id add up to -cost; its forfeit rows
--     are money the account lost at a credit set, beside the cost;
--   - for a running call (its row in live_calls) they add up to
--     -reserved;
--   - no running call already has a CDR; no reservation rows of a call
--     that is neither running nor settled;
--   - no balance below -credit_limit.
--
-- Credit set.  'set X' makes the balance X and makes what each running
-- call of the account holds at that moment non-refundable
-- (live_calls.forfeit := reserved).  Such a call's settlement gives back
-- reserved - GREATEST(cost, forfeit); forfeit - cost, when positive, is
-- a 'forfeit' row.  So after 'set 0' the balance stays 0 however the
-- account's running calls end; what they reserve after the set (only
-- possible with a credit limit) comes back as usual.
--
-- Postpaid.  accounts.credit_limit (>= 0, default 0) is how far below
-- zero the balance may go: CHECK (balance >= -credit_limit) replaces
-- CHECK (balance >= 0).  tg_authorize and tg_reserve compare with and
-- grant from balance + credit_limit; their `balance` column stays the
-- balance itself.
--
-- Fixes of the billing functions, each idempotent with exact refunds:
--   - tg_reserve grants nothing and changes nothing when the call was
--     settled while it waited for the account's lock;
--   - tg_settle of a call already settled releases a live row that
--     appeared after its CDR (a late reservation), refunds it and charges
--     nothing again;
--   - tg_authorize of a call that has a CDR reserves nothing and answers
--     'ended' (503); a retried authorisation finds its own reservation
--     before looking at the account's status.
-- Row locks are taken in the one order: the account, then the call.


-- ----------------------------------------------------------------- tables

ALTER TABLE accounts
    ADD COLUMN credit_limit BIGINT NOT NULL DEFAULT 0
        CHECK (credit_limit >= 0);
ALTER TABLE accounts DROP CONSTRAINT accounts_balance_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_balance_check
    CHECK (balance >= -credit_limit);

ALTER TABLE live_calls
    ADD COLUMN forfeit BIGINT NOT NULL DEFAULT 0;
ALTER TABLE live_calls ADD CONSTRAINT live_calls_forfeit_check
    CHECK (forfeit >= 0 AND forfeit <= reserved);

-- no foreign key to accounts: the ledger outlives a deleted account
CREATE TABLE ledger (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL,
    delta       BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('open', 'credit_add',
                    'credit_set', 'reservation', 'refund', 'call_cost',
                    'forfeit', 'manual')),
    ref         TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_account ON ledger (account_id, id);
CREATE INDEX ledger_ref ON ledger (ref) WHERE ref IS NOT NULL;


-- ---------------------------------------------------------------- triggers

CREATE FUNCTION tg_ledger_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows cannot be changed or deleted (% of row %)',
        TG_OP, OLD.id USING ERRCODE = '42501';
END
$$;

CREATE TRIGGER ledger_frozen
    BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION tg_ledger_frozen();


-- What the next UPDATE of a balance in this transaction is.  p_kind is a
-- ledger kind, or 'settle': then the delta is split into refund
-- (+p_released), call_cost (-p_cost) and forfeit (-p_forfeit).
CREATE FUNCTION tg_ledger_note(p_kind TEXT, p_ref TEXT,
                               p_released BIGINT DEFAULT 0,
                               p_cost BIGINT DEFAULT 0,
                               p_forfeit BIGINT DEFAULT 0)
RETURNS void LANGUAGE sql AS $$
    SELECT set_config('tollgate.kind', coalesce(p_kind, ''), true),
           set_config('tollgate.ref', coalesce(p_ref, ''), true),
           set_config('tollgate.released', p_released::text, true),
           set_config('tollgate.cost', p_cost::text, true),
           set_config('tollgate.forfeit', p_forfeit::text, true);
$$;


CREATE FUNCTION tg_ledger_setting(p_name TEXT) RETURNS TEXT
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting(p_name, true), '')
$$;


CREATE FUNCTION tg_ledger_row(p_account_id BIGINT, p_delta BIGINT,
                              p_kind TEXT, p_ref TEXT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger (account_id, delta, kind, ref)
    SELECT p_account_id, p_delta, p_kind, p_ref WHERE p_delta <> 0;
$$;


CREATE FUNCTION tg_ledger_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tg_ledger_row(NEW.id, NEW.balance, 'open', NULL);
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_ledger_open
    AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION tg_ledger_open();


CREATE FUNCTION tg_ledger_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_delta BIGINT := NEW.balance - OLD.balance;
    v_kind TEXT := coalesce(tg_ledger_setting('tollgate.kind'), 'manual');
    v_ref TEXT := tg_ledger_setting('tollgate.ref');
    v_released BIGINT;
    v_cost BIGINT;
    v_forfeit BIGINT;
BEGIN
    IF v_kind = 'settle' THEN
        v_released := coalesce(tg_ledger_setting('tollgate.released'),
                               '0')::bigint;
        v_cost := coalesce(tg_ledger_setting('tollgate.cost'), '0')::bigint;
        v_forfeit := coalesce(tg_ledger_setting('tollgate.forfeit'),
                              '0')::bigint;
    END IF;

    -- a note is for one UPDATE
    PERFORM tg_ledger_note(NULL, NULL);

    IF v_kind <> 'settle' THEN
        PERFORM tg_ledger_row(NEW.id, v_delta, v_kind, v_ref);
        RETURN NULL;
    END IF;

    IF v_released - v_cost - v_forfeit <> v_delta THEN
        RAISE EXCEPTION 'ledger: settlement of % moves account % by %, '
            'not by % - % - %', v_ref, NEW.id, v_delta, v_released,
            v_cost, v_forfeit;
    END IF;

    PERFORM tg_ledger_row(NEW.id, v_released, 'refund', v_ref);
    PERFORM tg_ledger_row(NEW.id, -v_cost, 'call_cost', v_ref);
    PERFORM tg_ledger_row(NEW.id, -v_forfeit, 'forfeit', v_ref);
    RETURN NULL;
END
$$;

-- fires for every UPDATE that sets the balance, also when it does not
-- change it: a settlement whose cost is its reservation still writes its
-- refund and call_cost rows
CREATE TRIGGER accounts_ledger_balance
    AFTER UPDATE OF balance ON accounts
    FOR EACH ROW EXECUTE FUNCTION tg_ledger_balance();


-- a new credit limit re-arms the account's running calls
DROP TRIGGER accounts_notify ON accounts;
CREATE TRIGGER accounts_notify
    AFTER UPDATE OF balance, status, rate_plan_id, max_calls,
                    daily_spend_cap, credit_limit ON accounts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION tg_accounts_notify();


-- -------------------------------------------------------------- authorise

-- The CDR of a refused call (reason 'rejected'), unless the call has one.
CREATE FUNCTION tg_reject(p_call_id TEXT, p_account_id BIGINT,
                          p_caller TEXT, p_callee TEXT, p_gateway TEXT,
                          p_setup_ms BIGINT, p_sip_code INTEGER)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO cdrs (call_id, account_id, caller, callee, gateway,
                      setup_at, end_at, billed_seconds, cost, sip_code,
                      hangup_by, reason)
    VALUES (p_call_id, p_account_id, p_caller, p_callee, p_gateway,
            to_timestamp(p_setup_ms / 1000.0), now(), 0, 0, p_sip_code,
            'tollgate', 'rejected')
    ON CONFLICT (call_id) DO NOTHING;
$$;


-- Take away the live row of a call that has its CDR already (a
-- reservation made after the call ended) and give back what it held but
-- for what a credit set made non-refundable: nothing is charged again.
-- Locks the account, then the call.  Returns what went back, NULL if the
-- call has no live row.
CREATE FUNCTION tg_release(p_call_id TEXT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    v_acct BIGINT;
    v_res BIGINT;
    v_forfeit BIGINT;
BEGIN
    SELECT l.account_id INTO v_acct FROM live_calls l
     WHERE l.call_id = p_call_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM 1 FROM accounts WHERE id = v_acct FOR UPDATE;
    DELETE FROM live_calls WHERE call_id = p_call_id
        RETURNING live_calls.reserved, live_calls.forfeit
             INTO v_res, v_forfeit;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM tg_ledger_note('settle', p_call_id, v_res, 0, v_forfeit);
    UPDATE accounts SET balance = accounts.balance + v_res - v_forfeit,
                        updated_at = now()
     WHERE id = v_acct;

    RETURN v_res - v_forfeit;
END
$$;


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

    PERFORM tg_ledger_note('reservation', p_call_id);
    UPDATE accounts SET balance = accounts.balance - v_grant,
                        updated_at = now()
     WHERE id = a.id;

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

    PERFORM tg_ledger_note('reservation', p_call_id);
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


-- ----------------------------------------------------------------- settle

-- Settle a call: its CDR, its cost, the refund of what it did not use.
-- Idempotent on the call id.  Result 'settled' or 'duplicate'; refunded
-- is what went back to the balance beyond the cost.
CREATE OR REPLACE FUNCTION tg_settle(p_call_id TEXT, p_account_id BIGINT,
                                     p_caller TEXT, p_callee TEXT,
                                     p_gateway TEXT, p_setup_ms BIGINT,
                                     p_answer_ms BIGINT, p_end_ms BIGINT,
                                     p_billed INTEGER, p_cost BIGINT,
                                     p_sip_code INTEGER, p_hangup_by TEXT,
                                     p_reason TEXT)
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
                      sip_code, hangup_by, reason)
    VALUES (p_call_id, v_acct, p_caller, p_callee, p_gateway,
            to_timestamp(p_setup_ms / 1000.0),
            CASE WHEN p_answer_ms > 0
                 THEN to_timestamp(p_answer_ms / 1000.0) END,
            to_timestamp(p_end_ms / 1000.0), p_billed, p_cost, p_sip_code,
            p_hangup_by, p_reason)
    ON CONFLICT (call_id) DO NOTHING;

    IF NOT FOUND THEN
        -- settled before.  A live row of the call is a reservation made
        -- after its CDR (a late authorisation or reservation): it goes,
        -- with a refund of what it held, and nothing is charged again
        result := 'duplicate';

        SELECT l.account_id INTO v_lacct FROM live_calls l
         WHERE l.call_id = p_call_id;
        refunded := coalesce(tg_release(p_call_id), 0);

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
        PERFORM tg_ledger_note('settle', p_call_id, v_res, p_cost, v_lost);
        UPDATE accounts SET balance = accounts.balance + refunded,
                            updated_at = now()
         WHERE id = v_acct
        RETURNING accounts.balance INTO balance;
    END IF;

    result := 'settled';
    RETURN NEXT;
END
$$;


-- ----------------------------------------------------------------- credit

-- migration 003's tg_credit with its ledger rows; 'set' makes what the
-- account's running calls hold now non-refundable (see the top)
CREATE OR REPLACE FUNCTION tg_credit(p_key TEXT, p_account_id BIGINT,
                                     p_op TEXT, p_amount BIGINT,
                                     p_fingerprint TEXT)
RETURNS TABLE (result TEXT, balance BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    a accounts%ROWTYPE;
    k api_idempotency%ROWTYPE;
    v_new BIGINT;
BEGIN
    IF p_op NOT IN ('add', 'set') OR p_amount < 0
       OR (p_op = 'add' AND p_amount = 0) THEN
        RAISE EXCEPTION 'tg_credit: bad operation % %', p_op, p_amount
            USING ERRCODE = '22023';
    END IF;

    IF p_key IS NOT NULL THEN
        -- the first of two concurrent requests with a key holds its row
        -- lock until it commits; the second then sees it
        INSERT INTO api_idempotency (key, account_id, fingerprint, balance)
        VALUES (p_key, p_account_id, p_fingerprint, 0)
        ON CONFLICT (key) DO NOTHING;

        IF NOT FOUND THEN
            SELECT * INTO k FROM api_idempotency
             WHERE api_idempotency.key = p_key;
            IF k.fingerprint <> p_fingerprint THEN
                result := 'key_mismatch';
            ELSE
                result := 'replayed';
            END IF;
            balance := k.balance;
            RETURN NEXT;
            RETURN;
        END IF;

        DELETE FROM api_idempotency
         WHERE created_at < now() - interval '1 day';
    END IF;

    SELECT * INTO a FROM accounts WHERE id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        -- nothing applied: the key is not kept
        DELETE FROM api_idempotency WHERE api_idempotency.key = p_key;
        result := 'no_account'; balance := NULL;
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_op = 'add' THEN
        IF a.balance > 9223372036854775807 - p_amount THEN
            DELETE FROM api_idempotency
             WHERE api_idempotency.key = p_key;
            result := 'overflow'; balance := a.balance;
            RETURN NEXT;
            RETURN;
        END IF;
        v_new := a.balance + p_amount;
        PERFORM tg_ledger_note('credit_add', p_key);
    ELSE
        v_new := p_amount;
        PERFORM tg_ledger_note('credit_set', p_key);
    END IF;

    UPDATE accounts SET balance = v_new, updated_at = now()
     WHERE id = a.id;

    -- account, then its calls: the lock order of the billing functions
    IF p_op = 'set' THEN
        UPDATE live_calls SET forfeit = live_calls.reserved
         WHERE live_calls.account_id = a.id
           AND live_calls.forfeit <> live_calls.reserved;
    END IF;

    IF p_key IS NOT NULL THEN
        UPDATE api_idempotency SET balance = v_new
         WHERE api_idempotency.key = p_key;
    END IF;

    result := 'ok'; balance := v_new;
    RETURN NEXT;
END
$$;


-- ------------------------------------------------------------------ check

-- Every violation of the invariants (see the top), one row each; no row
-- means the ledger and the balances agree.  expected and found are
-- micro-units, but for 'live_call_settled' (expected 0: no live row,
-- found: what the row still holds).
CREATE FUNCTION tg_ledger_check()
RETURNS TABLE (what TEXT, account_id BIGINT, call_id TEXT,
               expected BIGINT, found BIGINT)
LANGUAGE sql STABLE AS $$
    WITH per_call AS (
        SELECT g.ref, sum(g.delta)::bigint AS sum
          FROM ledger g
         WHERE g.ref IS NOT NULL
           AND g.kind IN ('reservation', 'refund', 'call_cost')
         GROUP BY g.ref
    ), per_account AS (
        SELECT g.account_id, sum(g.delta)::bigint AS sum
          FROM ledger g GROUP BY g.account_id
    )
    SELECT 'balance', a.id, NULL::text, a.balance, coalesce(p.sum, 0)
      FROM accounts a LEFT JOIN per_account p ON p.account_id = a.id
     WHERE a.balance <> coalesce(p.sum, 0)
    UNION ALL
    SELECT 'credit_limit', a.id, NULL, -a.credit_limit, a.balance
      FROM accounts a
     WHERE a.balance < -a.credit_limit
    UNION ALL
    SELECT 'settled_call', c.account_id, c.call_id, -c.cost,
           coalesce(p.sum, 0)
      FROM cdrs c LEFT JOIN per_call p ON p.ref = c.call_id
     WHERE -c.cost <> coalesce(p.sum, 0)
       AND NOT EXISTS (SELECT 1 FROM live_calls l
                        WHERE l.call_id = c.call_id)
    UNION ALL
    SELECT 'live_call', l.account_id, l.call_id, -l.reserved,
           coalesce(p.sum, 0)
      FROM live_calls l LEFT JOIN per_call p ON p.ref = l.call_id
     WHERE -l.reserved <> coalesce(p.sum, 0)
       AND NOT EXISTS (SELECT 1 FROM cdrs c WHERE c.call_id = l.call_id)
    UNION ALL
    SELECT 'live_call_settled', l.account_id, l.call_id, 0, l.reserved
      FROM live_calls l JOIN cdrs c ON c.call_id = l.call_id
    UNION ALL
    SELECT 'unknown_call', NULL, p.ref, 0, p.sum
      FROM per_call p
     WHERE p.sum <> 0
       AND NOT EXISTS (SELECT 1 FROM cdrs c WHERE c.call_id = p.ref)
       AND NOT EXISTS (SELECT 1 FROM live_calls l WHERE l.call_id = p.ref)
    ORDER BY 1, 2, 3
$$;


-- --------------------------------------------------------------- back-fill

-- The ledger starts as if it had always been kept: each account opens
-- with what it has now, what its running calls hold and what its settled
-- calls cost; each running call has reserved what it holds and each
-- settled call has cost what its CDR says.
INSERT INTO ledger (account_id, delta, kind, ref, at)
SELECT o.id, o.delta, 'open', NULL, o.created_at
  FROM (SELECT a.id, a.created_at,
               a.balance
               + coalesce((SELECT sum(l.reserved) FROM live_calls l
                            WHERE l.account_id = a.id), 0)
               + coalesce((SELECT sum(c.cost) FROM cdrs c
                            WHERE c.account_id = a.id
                              AND NOT EXISTS (SELECT 1 FROM live_calls l
                                      WHERE l.call_id = c.call_id)), 0)
               AS delta
          FROM accounts a) o
 WHERE o.delta <> 0;

INSERT INTO ledger (account_id, delta, kind, ref, at)
SELECT l.account_id, -l.reserved, 'reservation', l.call_id, l.setup_at
  FROM live_calls l
 WHERE l.reserved <> 0;

INSERT INTO ledger (account_id, delta, kind, ref, at)
SELECT c.account_id, -c.cost, 'call_cost', c.call_id, c.end_at
  FROM cdrs c
 WHERE c.cost <> 0 AND c.account_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM live_calls l WHERE l.call_id = c.call_id);
