-- tools/seed-demo.sql - demo data for tools/quickstart.sh
--
-- Idempotent: run it any number of times.  Rows that exist are brought
-- back to the values below, except the demo account's balance, which is
-- set only when the account is created (calls spend it).
--
-- Money is in micro-units: 1.000000 = 1000000.
--   rate plan "demo": 0.010000/min to any number, 0.020000/min to 44...,
--                     0.030000/min to 49..., 0.150000/min to 4477...
--   account "demo":   balance 10.000000, SIP user demo, password demo
--                     (only HA1 = md5("demo:tollgate:demo") is stored,
--                     realm "tollgate" as sip_realm in the quick start)
--   gateway "gw1":    127.0.0.1:5080 over UDP, route "" (every number)

BEGIN;

INSERT INTO rate_plans (name, currency)
VALUES ('demo', 'EUR')
ON CONFLICT (name) DO UPDATE SET currency = EXCLUDED.currency;

INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
                   initial_increment, subsequent_increment)
SELECT rp.id, r.prefix, r.connect_fee, r.price_per_minute, r.initial,
       r.subsequent
FROM rate_plans rp,
     (VALUES ('',     0, 10000, 60, 60),
             ('44',   0, 20000, 30,  6),
             ('49',   0, 30000, 30,  6),
             ('4477', 50000, 150000, 60, 1))
       AS r(prefix, connect_fee, price_per_minute, initial, subsequent)
WHERE rp.name = 'demo'
ON CONFLICT (rate_plan_id, prefix, valid_from) DO UPDATE
   SET connect_fee = EXCLUDED.connect_fee,
       price_per_minute = EXCLUDED.price_per_minute,
       initial_increment = EXCLUDED.initial_increment,
       subsequent_increment = EXCLUDED.subsequent_increment;

INSERT INTO accounts (name, status, currency, balance, max_calls,
                      rate_plan_id, sip_username, sip_ha1)
SELECT 'demo', 'active', 'EUR', 10000000, 10, rp.id, 'demo',
       md5('demo:tollgate:demo')
FROM rate_plans rp
WHERE rp.name = 'demo'
ON CONFLICT (name) DO UPDATE
   SET status = 'active',
       rate_plan_id = EXCLUDED.rate_plan_id,
       sip_username = EXCLUDED.sip_username,
       sip_ha1 = EXCLUDED.sip_ha1,
       updated_at = now();

INSERT INTO gateways (name, address, transport)
VALUES ('gw1', '127.0.0.1:5080', 'udp')
ON CONFLICT (name) DO UPDATE
   SET address = EXCLUDED.address, transport = EXCLUDED.transport;

INSERT INTO routes (prefix, position, gateway_id)
SELECT '', 0, g.id FROM gateways g WHERE g.name = 'gw1'
ON CONFLICT (prefix, gateway_id) DO UPDATE SET position = EXCLUDED.position;

COMMIT;
