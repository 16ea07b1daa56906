-- tollgate schema, migration 012: nodes of a cluster.
--
-- Several tollgate nodes share one database.  Each running process holds
-- a lease on its node's row of `nodes`:
--
--   instance     random id of the process that holds the lease; a second
--                process started with the same node_name while the lease
--                is alive refuses to start, naming the holder
--   sip_addr,    where the node listens (for /v1/health and operators)
--   api_addr
--   lease_until  renewed with every heartbeat; once it has passed, the
--                node counts as dead and one surviving node settles its
--                live calls (reason 'recovered')
--   draining     the node takes no new calls and ends when its running
--                calls have ended
--
-- cdrs.settled_by is the node whose session wrote the CDR: every node
-- sets its node_name as its sessions' application_name, so the default
-- names it without a change to the settlement functions.

ALTER TABLE nodes
    ADD COLUMN instance    TEXT,
    ADD COLUMN sip_addr    TEXT,
    ADD COLUMN api_addr    TEXT,
    ADD COLUMN lease_until TIMESTAMPTZ,
    ADD COLUMN draining    BOOLEAN NOT NULL DEFAULT false;

-- existing rows keep NULL (written before nodes named themselves)
ALTER TABLE cdrs ADD COLUMN settled_by TEXT;
ALTER TABLE cdrs ALTER COLUMN settled_by
    SET DEFAULT nullif(current_setting('application_name'), '');
