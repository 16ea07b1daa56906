-- tollgate schema, migration 017: the CDR reason of a session timer.
--
-- A call whose session timer (RFC 4028) ran out on one of its legs, or
-- whose refresh the peer answered 408 or 481 (or never answered), ends
-- with reason 'session_timer' and is charged up to its last good
-- refresh.  The CHECK on the column (set last by migration 016) lists
-- every reason; it gets the new one.

ALTER TABLE cdrs DROP CONSTRAINT IF EXISTS cdrs_reason_check;
ALTER TABLE cdrs ADD CONSTRAINT cdrs_reason_check CHECK (reason IN (
    'normal', 'caller', 'callee', 'credit', 'media_timeout', 'admin',
    'shutdown', 'recovered', 'failed', 'no_answer', 'cancelled',
    'max_duration', 'rejected', 'no_margin', 'session_timer'));
