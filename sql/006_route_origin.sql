-- tollgate schema, migration 006: who owns a gateway or a route.
--
-- The configuration file owns what it names.  At every start tollgate
-- writes its `gateway` and `route` lines here with tg_routes_sync: the
-- rows they name are created or updated to match (origin 'config', with
-- the file and line), rows an earlier configuration named and this one
-- no longer does are removed, rows created through the REST API (origin
-- 'api') are kept.  A route prefix the configuration names is the
-- configuration's with all its gateways: rows of that prefix the API had
-- added go.  The API refuses to change or delete 'config' rows.
--
-- Every change of gateways or routes, by tollgate or straight in SQL,
-- sends NOTIFY tollgate_routes (once per transaction): every node loads
-- its routing table again.

ALTER TABLE gateways
    ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'
        CHECK (origin IN ('config', 'api')),
    ADD COLUMN config_file TEXT,
    ADD COLUMN config_line INTEGER,
    ADD CONSTRAINT gateways_config_source
        CHECK ((origin = 'config') = (config_line IS NOT NULL));

ALTER TABLE routes
    ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'
        CHECK (origin IN ('config', 'api')),
    ADD COLUMN config_file TEXT,
    ADD COLUMN config_line INTEGER,
    ADD CONSTRAINT routes_config_source
        CHECK ((origin = 'config') = (config_line IS NOT NULL));

CREATE INDEX routes_origin ON routes (origin, prefix);


-- p_config is the configuration's gateways and routes:
--   {"file": "/etc/tollgate/tollgate.conf",
--    "gateways": [{"name": "gw1", "address": "192.0.2.1:5060",
--                  "transport": "udp", "line": 10}, ...],
--    "routes": [{"prefix": "4420", "gateways": ["gw1", "gw2"],
--                "line": 12}, ...]}
-- (prefix "" is the default route).  Returns what it changed.
CREATE FUNCTION tg_routes_sync(p_config JSONB)
RETURNS TABLE (gateways INTEGER, routes INTEGER, gateways_removed INTEGER,
               routes_removed INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
    v_file TEXT := p_config->>'file';
BEGIN
    CREATE TEMPORARY TABLE tg_cfg_gw ON COMMIT DROP AS
        SELECT g.name, g.address, g.transport, g.line
          FROM jsonb_to_recordset(coalesce(p_config->'gateways', '[]'))
               AS g(name TEXT, address TEXT, transport TEXT, line INTEGER);

    CREATE TEMPORARY TABLE tg_cfg_rt ON COMMIT DROP AS
        SELECT r.prefix, (n.pos - 1)::INTEGER AS position, n.gw, r.line
          FROM jsonb_to_recordset(coalesce(p_config->'routes', '[]'))
               AS r(prefix TEXT, gateways JSONB, line INTEGER),
               jsonb_array_elements_text(r.gateways)
               WITH ORDINALITY AS n(gw, pos);

    -- the configuration wins for its own gateways, even over the API's
    INSERT INTO gateways AS g (name, address, transport, origin,
                               config_file, config_line)
    SELECT c.name, c.address, c.transport, 'config', v_file, c.line
      FROM tg_cfg_gw c
    ON CONFLICT (name) DO UPDATE
       SET address = EXCLUDED.address, transport = EXCLUDED.transport,
           origin = 'config', config_file = EXCLUDED.config_file,
           config_line = EXCLUDED.config_line
     WHERE (g.address, g.transport, g.origin, g.config_file,
            g.config_line) IS DISTINCT FROM
           (EXCLUDED.address, EXCLUDED.transport, EXCLUDED.origin,
            EXCLUDED.config_file, EXCLUDED.config_line);

    -- gateways of an earlier configuration (their routes go with them)
    DELETE FROM gateways g
     WHERE g.origin = 'config'
       AND NOT EXISTS (SELECT 1 FROM tg_cfg_gw c WHERE c.name = g.name);
    GET DIAGNOSTICS gateways_removed = ROW_COUNT;

    -- rows of a configuration's prefix that it does not name, and rows
    -- an earlier configuration named
    DELETE FROM routes r
     WHERE (r.origin = 'config'
            OR r.prefix IN (SELECT c.prefix FROM tg_cfg_rt c))
       AND NOT EXISTS (SELECT 1 FROM tg_cfg_rt c
                         JOIN gateways g ON g.name = c.gw
                        WHERE c.prefix = r.prefix
                          AND g.id = r.gateway_id);
    GET DIAGNOSTICS routes_removed = ROW_COUNT;

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

    SELECT count(*) INTO gateways FROM tg_cfg_gw;
    SELECT count(DISTINCT prefix) INTO routes FROM tg_cfg_rt;
    RETURN NEXT;
END
$$;


CREATE FUNCTION tg_routes_notify() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tollgate_routes', '');
    RETURN NULL;
END
$$;

-- per row, so that a statement that changes nothing sends nothing; one
-- notification per transaction reaches the listeners
CREATE TRIGGER gateways_notify
    AFTER INSERT OR UPDATE OR DELETE ON gateways
    FOR EACH ROW EXECUTE FUNCTION tg_routes_notify();
CREATE TRIGGER gateways_notify_truncate
    AFTER TRUNCATE ON gateways
    FOR EACH STATEMENT EXECUTE FUNCTION tg_routes_notify();

CREATE TRIGGER routes_notify
    AFTER INSERT OR UPDATE OR DELETE ON routes
    FOR EACH ROW EXECUTE FUNCTION tg_routes_notify();
CREATE TRIGGER routes_notify_truncate
    AFTER TRUNCATE ON routes
    FOR EACH STATEMENT EXECUTE FUNCTION tg_routes_notify();
