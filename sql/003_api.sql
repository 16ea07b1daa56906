-- tollgate schema, migration 003: the REST API.
--
--   api_idempotency  credit changes already applied, by the client's
--                    Idempotency-Key, so that a retried request is answered
--                    with the first result instead of being applied again.
--   tg_credit        one credit change (add or set) of an account, atomic
--                    and idempotent on its key.  It runs as an ordinary
--                    update of accounts: the accounts_notify trigger tells
--                    every node, whose billing re-arms the account's calls.

CREATE TABLE api_idempotency (
    key          TEXT PRIMARY KEY,
    account_id   BIGINT NOT NULL,
    fingerprint  TEXT NOT NULL,
    balance      BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_idempotency_age ON api_idempotency (created_at);


-- p_op is 'add' or 'set'; p_amount is in micro-units, >= 0 (> 0 for add).
-- p_key may be NULL (no Idempotency-Key).  p_fingerprint identifies the
-- request (account, op, amount): the same key with another request is
-- 'key_mismatch'.  result: 'ok', 'replayed' (the key was seen: nothing
-- changed, balance is the one the first request left), 'no_account',
-- 'key_mismatch', 'overflow'.
CREATE FUNCTION tg_credit(p_key TEXT, p_account_id BIGINT, p_op TEXT,
                          p_amount BIGINT, p_fingerprint TEXT)
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
    ELSE
        v_new := p_amount;
    END IF;

    UPDATE accounts SET balance = v_new, updated_at = now()
     WHERE id = a.id;

    IF p_key IS NOT NULL THEN
        UPDATE api_idempotency SET balance = v_new
         WHERE api_idempotency.key = p_key;
    END IF;

    result := 'ok'; balance := v_new;
    RETURN NEXT;
END
$$;
