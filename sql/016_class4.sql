-- tollgate schema, migration 016: class-4 routing.
--
--   - carriers and their cost decks (carrier_rates): what a carrier
--     charges tollgate by prefix, with a validity window; a gateway may
--     belong to a carrier (gateways.carrier_id)
--   - least-cost routes: a routes row of mode 'lcr' has no gateway; the
--     B2BUA takes the gateways of every carrier whose valid deck covers
--     the number, cheapest first
--   - number translation rules (number_rules), in the words of the
--     configuration's number_in / number_out lines
--   - the CDR's dialled and normalised number, carrier, carrier_cost
--     and margin, written by tg_settle_class4 (tg_settle and
--     tg_settle_media keep their signatures and leave them NULL)
--
-- The configuration owns what it names, as with gateways and routes:
-- tg_routes_sync writes its carriers (named by gateway lines), its lcr
-- routes and its number rules too.  Every change of these tables sends
-- NOTIFY tollgate_routes: every node loads its routing table, decks and
-- rules again.

CREATE TABLE carriers (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
                CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    preference  INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE carrier_rates (
    id                   BIGSERIAL PRIMARY KEY,
    carrier_id           BIGINT NOT NULL REFERENCES carriers(id)
                         ON DELETE CASCADE,
    prefix               TEXT NOT NULL CHECK (prefix ~ '^[0-9]{0,24}$'),
    connect_fee          BIGINT NOT NULL DEFAULT 0 CHECK (connect_fee >= 0),
    price_per_minute     BIGINT NOT NULL CHECK (price_per_minute >= 0),
    initial_increment    INTEGER NOT NULL DEFAULT 60
                         CHECK (initial_increment BETWEEN 1 AND 3600),
    subsequent_increment INTEGER NOT NULL DEFAULT 60
                         CHECK (subsequent_increment BETWEEN 1 AND 3600),
    valid_from           TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    valid_to             TIMESTAMPTZ NOT NULL DEFAULT 'infinity',
    CHECK (valid_from < valid_to),
    UNIQUE (carrier_id, prefix, valid_from)
);

ALTER TABLE gateways
    ADD COLUMN carrier_id BIGINT REFERENCES carriers(id) ON DELETE SET NULL;

ALTER TABLE routes
    ALTER COLUMN gateway_id DROP NOT NULL,
    ADD COLUMN mode TEXT NOT NULL DEFAULT 'static'
        CHECK (mode IN ('static', 'lcr')),
    ADD CONSTRAINT routes_mode_gateway
        CHECK ((mode = 'lcr') = (gateway_id IS NULL));
CREATE UNIQUE INDEX routes_lcr_prefix ON routes (prefix) WHERE mode = 'lcr';

-- rules apply in this order: the configuration's in file order, then
-- the API's by position and id
CREATE TABLE number_rules (
    id          BIGSERIAL PRIMARY KEY,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    position    INTEGER NOT NULL DEFAULT 0,
    rule        TEXT NOT NULL CHECK (length(rule) BETWEEN 1 AND 512),
    origin      TEXT NOT NULL DEFAULT 'api'
                CHECK (origin IN ('config', 'api')),
    config_file TEXT,
    config_line INTEGER,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT number_rules_config_source
        CHECK ((origin = 'config') = (config_line IS NOT NULL))
);

ALTER TABLE cdrs
    ADD COLUMN dialled TEXT,
    ADD COLUMN normalised TEXT,
    ADD COLUMN carrier TEXT,
    ADD COLUMN carrier_cost BIGINT,
    ADD COLUMN margin BIGINT;

ALTER TABLE cdrs DROP CONSTRAINT IF EXISTS cdrs_reason_check;
ALTER TABLE cdrs ADD CONSTRAINT cdrs_reason_check
    CHECK (reason IN ('normal', 'caller', 'callee', 'credit',
                      'media_timeout', 'admin', 'shutdown', 'recovered',
                      'failed', 'no_answer', 'cancelled', 'max_duration',
                      'rejected', 'no_margin'));


-- statement triggers: a deck import of 50,000 rows notifies once
CREATE TRIGGER carriers_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON carriers
    FOR EACH STATEMENT EXECUTE FUNCTION tg_routes_notify();
CREATE TRIGGER carrier_rates_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON carrier_rates
    FOR EACH STATEMENT EXECUTE FUNCTION tg_routes_notify();
CREATE TRIGGER number_rules_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON number_rules
    FOR EACH STATEMENT EXECUTE FUNCTION tg_routes_notify();


-- p_config as in 006, and:
--   gateways[].carrier  the carrier's name (created if new), or null
--   routes[].lcr        true: a least-cost route (gateways [])
--   rules: [{"direction": "in", "rule": "national=44", "line": 20}, ...]
CREATE OR REPLACE FUNCTION tg_routes_sync(p_config JSONB)
RETURNS TABLE (gateways INTEGER, routes INTEGER, gateways_removed INTEGER,
               routes_removed INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
    v_file TEXT := p_config->>'file';
    v_n INTEGER;
BEGIN
    CREATE TEMPORARY TABLE tg_cfg_gw ON COMMIT DROP AS
        SELECT g.name, g.address, g.transport, g.line, g.carrier
          FROM jsonb_to_recordset(coalesce(p_config->'gateways', '[]'))
               AS g(name TEXT, address TEXT, transport TEXT, line INTEGER,
                    carrier TEXT);

    CREATE TEMPORARY TABLE tg_cfg_rt ON COMMIT DROP AS
        SELECT r.prefix, (n.pos - 1)::INTEGER AS position, n.gw, r.line
          FROM jsonb_to_recordset(coalesce(p_config->'routes', '[]'))
               AS r(prefix TEXT, gateways JSONB, line INTEGER),
               jsonb_array_elements_text(r.gateways)
               WITH ORDINALITY AS n(gw, pos);

    CREATE TEMPORARY TABLE tg_cfg_lcr ON COMMIT DROP AS
        SELECT r.prefix, r.line
          FROM jsonb_to_recordset(coalesce(p_config->'routes', '[]'))
               AS r(prefix TEXT, lcr BOOLEAN, line INTEGER)
         WHERE coalesce(r.lcr, false);

    INSERT INTO carriers (name)
    SELECT DISTINCT c.carrier FROM tg_cfg_gw c WHERE c.carrier IS NOT NULL
    ON CONFLICT (name) DO NOTHING;

    -- the configuration wins for its own gateways, even over the API's
    INSERT INTO gateways AS g (name, address, transport, origin,
                               config_file, config_line, carrier_id)
    SELECT c.name, c.address, c.transport, 'config', v_file, c.line,
           (SELECT k.id FROM carriers k WHERE k.name = c.carrier)
      FROM tg_cfg_gw c
    ON CONFLICT (name) DO UPDATE
       SET address = EXCLUDED.address, transport = EXCLUDED.transport,
           origin = 'config', config_file = EXCLUDED.config_file,
           config_line = EXCLUDED.config_line,
           carrier_id = EXCLUDED.carrier_id
     WHERE (g.address, g.transport, g.origin, g.config_file,
            g.config_line, g.carrier_id) IS DISTINCT FROM
           (EXCLUDED.address, EXCLUDED.transport, EXCLUDED.origin,
            EXCLUDED.config_file, EXCLUDED.config_line,
            EXCLUDED.carrier_id);

    DELETE FROM gateways g
     WHERE g.origin = 'config'
       AND NOT EXISTS (SELECT 1 FROM tg_cfg_gw c WHERE c.name = g.name);
    GET DIAGNOSTICS gateways_removed = ROW_COUNT;

    -- rows of a configuration's prefix that it does not name, and rows
    -- an earlier configuration named
    DELETE FROM routes r
     WHERE r.mode = 'static'
       AND (r.origin = 'config'
            OR r.prefix IN (SELECT c.prefix FROM tg_cfg_rt c)
            OR r.prefix IN (SELECT l.prefix FROM tg_cfg_lcr l))
       AND NOT EXISTS (SELECT 1 FROM tg_cfg_rt c
                         JOIN gateways g ON g.name = c.gw
                        WHERE c.prefix = r.prefix
                          AND g.id = r.gateway_id);
    GET DIAGNOSTICS routes_removed = ROW_COUNT;

    DELETE FROM routes r
     WHERE r.mode = 'lcr'
       AND (r.origin = 'config'
            OR r.prefix IN (SELECT c.prefix FROM tg_cfg_rt c))
       AND NOT EXISTS (SELECT 1 FROM tg_cfg_lcr l WHERE l.prefix = r.prefix);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    routes_removed := routes_removed + v_n;

    INSERT INTO routes AS r (prefix, position, gateway_id, origin,
                             config_file, config_line)
    SELECT c.prefix, c.position, g.id, 'config', v_file, c.line
      FROM tg_cfg_rt c JOIN gateways g ON g.name = c.gw
    ON CONFLICT (prefix, gateway_id) DO UPDATE
       SET position = EXCLUDED.position, origin = 'config',
           config_file = EXCLUDED.config_file,
           config_line = EXCLUDED.config_line
     WHERE (r.position, r.origin, r.config_file, r.config_line)
           IS DISTINCT FROM
           (EXCLUDED.position, EXCLUDED.origin, EXCLUDED.config_file,
            EXCLUDED.config_line);

    INSERT INTO routes AS r (prefix, position, gateway_id, mode, origin,
                             config_file, config_line)
    SELECT l.prefix, 0, NULL, 'lcr', 'config', v_file, l.line
      FROM tg_cfg_lcr l
    ON CONFLICT (prefix) WHERE mode = 'lcr' DO UPDATE
       SET origin = 'config', config_file = EXCLUDED.config_file,
           config_line = EXCLUDED.config_line
     WHERE (r.origin, r.config_file, r.config_line) IS DISTINCT FROM
           (EXCLUDED.origin, EXCLUDED.config_file, EXCLUDED.config_line);

    -- the configuration's rules, replaced when they changed
    IF EXISTS (SELECT n.direction, n.rule, n.config_line
                 FROM number_rules n WHERE n.origin = 'config'
               EXCEPT
               SELECT x.direction, x.rule, x.line
                 FROM jsonb_to_recordset(coalesce(p_config->'rules', '[]'))
                      AS x(direction TEXT, rule TEXT, line INTEGER))
       OR EXISTS (SELECT x.direction, x.rule, x.line
                    FROM jsonb_to_recordset(coalesce(p_config->'rules',
                                                     '[]'))
                         AS x(direction TEXT, rule TEXT, line INTEGER)
                  EXCEPT
                  SELECT n.direction, n.rule, n.config_line
                    FROM number_rules n WHERE n.origin = 'config')
       OR EXISTS (SELECT 1 FROM number_rules n WHERE n.origin = 'config'
                     AND n.config_file IS DISTINCT FROM v_file) THEN
        DELETE FROM number_rules n WHERE n.origin = 'config';
        INSERT INTO number_rules (direction, position, rule, origin,
                                  config_file, config_line)
        SELECT x.direction, x.line, x.rule, 'config', v_file, x.line
          FROM jsonb_to_recordset(coalesce(p_config->'rules', '[]'))
               AS x(direction TEXT, rule TEXT, line INTEGER);
    END IF;

    SELECT count(*) INTO gateways FROM tg_cfg_gw;
    SELECT count(DISTINCT prefix) INTO routes
      FROM (SELECT prefix FROM tg_cfg_rt UNION SELECT prefix FROM tg_cfg_lcr)
           AS p;
    RETURN NEXT;
END
$$;


-- ----------------------------------------------------------------- settle

-- Settle a call as tg_settle_media does, and write its class-4 fields:
-- the number as dialled and as normalised, the carrier of the gateway
-- that carried it, what the carrier charges for it (carrier_cost, by the
-- carrier's deck and increments) and the margin (cost - carrier_cost).
-- A duplicate settlement fills in fields a first one left NULL.
CREATE FUNCTION tg_settle_class4(p_call_id TEXT, p_account_id BIGINT,
                                 p_caller TEXT, p_callee TEXT,
                                 p_gateway TEXT, p_setup_ms BIGINT,
                                 p_answer_ms BIGINT, p_end_ms BIGINT,
                                 p_billed INTEGER, p_cost BIGINT,
                                 p_sip_code INTEGER, p_hangup_by TEXT,
                                 p_reason TEXT, p_media JSONB,
                                 p_dialled TEXT, p_normalised TEXT,
                                 p_carrier TEXT, p_carrier_cost BIGINT,
                                 p_margin BIGINT)
RETURNS TABLE (result TEXT, refunded BIGINT, balance BIGINT)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT s.result, s.refunded, s.balance INTO result, refunded, balance
      FROM tg_settle_media(p_call_id, p_account_id, p_caller, p_callee,
                           p_gateway, p_setup_ms, p_answer_ms, p_end_ms,
                           p_billed, p_cost, p_sip_code, p_hangup_by,
                           p_reason, p_media) AS s;

    IF p_dialled IS NOT NULL OR p_normalised IS NOT NULL
       OR p_carrier IS NOT NULL OR p_carrier_cost IS NOT NULL THEN
        UPDATE cdrs c
           SET dialled = coalesce(c.dialled, p_dialled),
               normalised = coalesce(c.normalised, p_normalised),
               carrier = coalesce(c.carrier, p_carrier),
               carrier_cost = coalesce(c.carrier_cost, p_carrier_cost),
               margin = coalesce(c.margin, p_margin)
         WHERE c.call_id = p_call_id;
    END IF;

    RETURN NEXT;
END
$$;


-- ------------------------------------------------------------- decks

-- Replace a carrier's whole deck (the carrier created if new) in one
-- transaction: POST /v1/carriers/{name}/deck.  A NULL valid_from is
-- '-infinity', a NULL valid_to 'infinity'; p_preference NULL keeps the
-- carrier's.  Returns the carrier and the number of prices.
CREATE FUNCTION tg_deck_import(p_carrier TEXT, p_prefix TEXT[],
                               p_price_per_minute BIGINT[],
                               p_connect_fee BIGINT[],
                               p_initial INTEGER[], p_subsequent INTEGER[],
                               p_valid_from TIMESTAMPTZ[],
                               p_valid_to TIMESTAMPTZ[],
                               p_preference INTEGER)
RETURNS TABLE (carrier_id BIGINT, prices INTEGER)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO carriers AS c (name, preference)
    VALUES (p_carrier, coalesce(p_preference, 0))
    ON CONFLICT (name) DO UPDATE
       SET preference = coalesce(p_preference, c.preference)
    RETURNING c.id INTO carrier_id;

    DELETE FROM carrier_rates r WHERE r.carrier_id = tg_deck_import.carrier_id;

    INSERT INTO carrier_rates (carrier_id, prefix, price_per_minute,
                               connect_fee, initial_increment,
                               subsequent_increment, valid_from, valid_to)
    SELECT tg_deck_import.carrier_id, u.p, u.ppm, u.cf, u.ini, u.sub,
           coalesce(u.vf, '-infinity'), coalesce(u.vt, 'infinity')
      FROM unnest(p_prefix, p_price_per_minute, p_connect_fee, p_initial,
                  p_subsequent, p_valid_from, p_valid_to)
           AS u(p, ppm, cf, ini, sub, vf, vt);
    GET DIAGNOSTICS prices = ROW_COUNT;

    RETURN NEXT;
END
$$;
