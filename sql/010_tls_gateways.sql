-- tollgate schema, migration 010: gateways reached over SIP over TLS.
--
-- A gateway's transport may now be 'tls' beside 'udp' and 'tcp'
-- (`gateway NAME ADDRESS transport=tls` in the configuration, or the
-- REST API).

ALTER TABLE gateways DROP CONSTRAINT IF EXISTS gateways_transport_check;
ALTER TABLE gateways ADD CONSTRAINT gateways_transport_check
    CHECK (transport IN ('udp', 'tcp', 'tls'));
