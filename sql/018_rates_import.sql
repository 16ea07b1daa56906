-- tollgate schema, migration 018: rate decks imported in bulk.
--
-- tg_rates_import() applies a whole deck of customer rates in one
-- statement, so in one transaction: a concurrent tg_authorize sees the
-- old deck or the new one, never a mix.  The rows come as parallel
-- arrays (one element a CSV line), p_line the line each came from.
--
-- Duplicates in the deck (the same rate plan, prefix and valid_from,
-- compared as timestamps) are refused: one row per duplicate line
-- (line, field 'prefix', message) and nothing is written.  Otherwise:
--   - rate plans named by the deck are created if new;
--   - p_replace: each plan the deck names keeps exactly the deck's rates
--     (rates of the plan not in the deck are deleted; a rate a running
--     call uses cannot be deleted and the import fails with 23503);
--   - every row is upserted by (rate plan, prefix, valid_from).
-- One result row (line NULL) then counts what was done.
CREATE FUNCTION tg_rates_import(p_plan TEXT[], p_prefix TEXT[],
                                p_connect_fee BIGINT[],
                                p_price_per_minute BIGINT[],
                                p_initial INTEGER[], p_subsequent INTEGER[],
                                p_valid_from TIMESTAMPTZ[], p_line INTEGER[],
                                p_replace BOOLEAN)
RETURNS TABLE (line INTEGER, field TEXT, error TEXT, inserted INTEGER,
               updated INTEGER, deleted INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
    n_dup INTEGER;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS tg_rates_deck (
        plan TEXT, prefix TEXT, cf BIGINT, ppm BIGINT, ini INTEGER,
        sub INTEGER, vf TIMESTAMPTZ, line INTEGER) ON COMMIT DROP;
    TRUNCATE tg_rates_deck;
    INSERT INTO tg_rates_deck
    SELECT u.plan, u.prefix, u.cf, u.ppm, u.ini, u.sub,
           coalesce(u.vf, '-infinity'), u.line
      FROM unnest(p_plan, p_prefix, p_connect_fee, p_price_per_minute,
                  p_initial, p_subsequent, p_valid_from, p_line)
           AS u(plan, prefix, cf, ppm, ini, sub, vf, line);

    RETURN QUERY
    SELECT d.line, 'prefix'::TEXT,
           format('duplicate of line %s (rate plan %s, prefix %s, '
                  'valid_from %s)', d.first, d.plan, d.prefix,
                  CASE WHEN isfinite(d.vf) THEN d.vf::TEXT
                       ELSE 'always' END),
           NULL::INTEGER, NULL::INTEGER, NULL::INTEGER
      FROM (SELECT t.line, t.plan, t.prefix, t.vf,
                   min(t.line) OVER (PARTITION BY t.plan, t.prefix, t.vf)
                   AS first
              FROM tg_rates_deck t) d
     WHERE d.line <> d.first
     ORDER BY d.line
     LIMIT 100;
    GET DIAGNOSTICS n_dup = ROW_COUNT;
    IF n_dup > 0 THEN
        RETURN;
    END IF;

    INSERT INTO rate_plans (name)
    SELECT DISTINCT t.plan FROM tg_rates_deck t
    ON CONFLICT (name) DO NOTHING;

    deleted := 0;
    IF p_replace THEN
        DELETE FROM rates r
         USING rate_plans p
         WHERE p.id = r.rate_plan_id
           AND p.name IN (SELECT DISTINCT t.plan FROM tg_rates_deck t)
           AND NOT EXISTS (SELECT 1 FROM tg_rates_deck t
                            WHERE t.plan = p.name AND t.prefix = r.prefix
                              AND t.vf = r.valid_from);
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;

    WITH up AS (
        INSERT INTO rates AS r (rate_plan_id, prefix, connect_fee,
                                price_per_minute, initial_increment,
                                subsequent_increment, valid_from)
        SELECT p.id, t.prefix, t.cf, t.ppm, t.ini, t.sub, t.vf
          FROM tg_rates_deck t JOIN rate_plans p ON p.name = t.plan
        ON CONFLICT (rate_plan_id, prefix, valid_from) DO UPDATE
           SET connect_fee = EXCLUDED.connect_fee,
               price_per_minute = EXCLUDED.price_per_minute,
               initial_increment = EXCLUDED.initial_increment,
               subsequent_increment = EXCLUDED.subsequent_increment
        RETURNING (r.xmax = 0) AS ins)
    SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins)
      INTO inserted, updated FROM up;

    line := NULL; field := NULL; error := NULL;
    RETURN NEXT;
END
$$;
