-- tollgate schema, migration 007: the SHA-256 digest HA1 (RFC 8760).
--
-- Beside sip_ha1 = md5("user:realm:password") every account with SIP
-- credentials keeps sip_ha1_sha256 = sha256("user:realm:password"), so
-- that a caller may answer the SHA-256 challenge.  Like the MD5 one it
-- is written by the REST API when a SIP password is set; an account
-- whose password was set before this migration has none until the
-- password is set again (its callers keep using MD5).

ALTER TABLE accounts
    ADD COLUMN sip_ha1_sha256 TEXT
        CHECK (sip_ha1_sha256 IS NULL OR sip_ha1_sha256 ~ '^[0-9a-f]{64}$');
