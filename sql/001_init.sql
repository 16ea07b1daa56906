-- tollgate schema, migration 001: accounts, rates, gateways, routes, calls.
-- Money is an integer number of micro-units (1 unit = 1,000,000) in BIGINT.
-- The migration tool wraps each file in one transaction and records it in
-- schema_version; files are applied in the order of their number.

CREATE TABLE rate_plans (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    currency    TEXT NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE rates (
    id                 BIGSERIAL PRIMARY KEY,
    rate_plan_id       BIGINT NOT NULL REFERENCES rate_plans(id) ON DELETE CASCADE,
    prefix             TEXT NOT NULL CHECK (prefix ~ '^[0-9]*$'),
    connect_fee        BIGINT NOT NULL DEFAULT 0 CHECK (connect_fee >= 0),
    price_per_minute   BIGINT NOT NULL CHECK (price_per_minute >= 0),
    initial_increment  INTEGER NOT NULL DEFAULT 60 CHECK (initial_increment >= 1),
    subsequent_increment INTEGER NOT NULL DEFAULT 60 CHECK (subsequent_increment >= 1),
    valid_from         TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (rate_plan_id, prefix, valid_from)
);
CREATE INDEX rates_lookup ON rates (rate_plan_id, prefix text_pattern_ops);

CREATE TABLE accounts (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    currency      TEXT NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    balance       BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    max_calls     INTEGER NOT NULL DEFAULT 10 CHECK (max_calls >= 0),
    rate_plan_id  BIGINT REFERENCES rate_plans(id),
    sip_username  TEXT UNIQUE,
    sip_ha1       TEXT CHECK (sip_ha1 IS NULL OR sip_ha1 ~ '^[0-9a-f]{32}$'),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE gateways (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    address     TEXT NOT NULL,
    transport   TEXT NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE routes (
    id          BIGSERIAL PRIMARY KEY,
    prefix      TEXT NOT NULL CHECK (prefix ~ '^[0-9]*$'),
    position    INTEGER NOT NULL DEFAULT 0,
    gateway_id  BIGINT NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    UNIQUE (prefix, gateway_id)
);

-- One row per running call: what it holds of its account's balance and when
-- this node last saw it alive, so that a crash loses nothing.
CREATE TABLE live_calls (
    call_id      TEXT PRIMARY KEY,
    node         TEXT NOT NULL,
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    caller       TEXT NOT NULL,
    callee       TEXT NOT NULL,
    gateway      TEXT,
    rate_id      BIGINT REFERENCES rates(id),
    setup_at     TIMESTAMPTZ NOT NULL,
    answer_at    TIMESTAMPTZ,
    reserved     BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    seen_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX live_calls_account ON live_calls (account_id);
CREATE INDEX live_calls_node ON live_calls (node);

CREATE TABLE cdrs (
    id            BIGSERIAL PRIMARY KEY,
    call_id       TEXT NOT NULL UNIQUE,
    account_id    BIGINT REFERENCES accounts(id),
    caller        TEXT NOT NULL,
    callee        TEXT NOT NULL,
    gateway       TEXT,
    setup_at      TIMESTAMPTZ NOT NULL,
    answer_at     TIMESTAMPTZ,
    end_at        TIMESTAMPTZ NOT NULL,
    billed_seconds INTEGER NOT NULL DEFAULT 0,
    cost          BIGINT NOT NULL DEFAULT 0 CHECK (cost >= 0),
    sip_code      INTEGER NOT NULL,
    hangup_by     TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('normal', 'caller', 'callee',
                    'credit', 'media_timeout', 'admin', 'shutdown', 'recovered',
                    'failed', 'no_answer', 'cancelled', 'max_duration', 'rejected')),
    media         JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cdrs_account_time ON cdrs (account_id, setup_at DESC, id DESC);
CREATE INDEX cdrs_time ON cdrs (setup_at DESC, id DESC);
