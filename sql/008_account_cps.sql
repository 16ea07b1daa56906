-- tollgate schema, migration 008: calls per second of an account.
--
-- max_cps is how many calls an account may start in one second (and at
-- once), beside max_calls, how many it may have at once.  Each node keeps
-- the account's bucket in memory once the caller is identified, so the
-- limit holds per node; 0 means no limit.

ALTER TABLE accounts
    ADD COLUMN max_cps INTEGER NOT NULL DEFAULT 0 CHECK (max_cps >= 0);
