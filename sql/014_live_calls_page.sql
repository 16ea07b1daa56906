-- tollgate schema, migration 014: the calls of every node, page by page.
--
-- GET /v1/calls lists the live_calls of every node in the order of
-- (node, call_id), a page at a time from the last row of the page before
-- (keyset: WHERE (node, call_id) > cursor ORDER BY node, call_id LIMIT n),
-- with or without node = ... .  This index serves both; it replaces the
-- index on node alone, of which it is a prefix.

CREATE INDEX live_calls_page ON live_calls (node, call_id);
DROP INDEX live_calls_node;
