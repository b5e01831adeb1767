-- convo's durable store. One schema for SQLite and Postgres: only TEXT and BIGINT columns
-- (times are epoch milliseconds, money is minor units, flags are 0/1), because the store talks
-- to both through sqlx's `Any` driver, which maps no richer types portably.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE channels (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    channel       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    config        TEXT NOT NULL,
    sender        TEXT NOT NULL,
    enabled       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, channel)
);

CREATE TABLE contacts (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    phone         TEXT,
    email         TEXT,
    name          TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- NULLs are distinct in both engines, so a contact without a phone never collides.
CREATE UNIQUE INDEX contacts_workspace_phone ON contacts (workspace_id, phone);
CREATE UNIQUE INDEX contacts_workspace_email ON contacts (workspace_id, email);

CREATE TABLE consents (
    workspace_id  TEXT NOT NULL,
    contact_id    TEXT NOT NULL REFERENCES contacts (id),
    status        TEXT NOT NULL,
    at            BIGINT,
    source        TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, contact_id)
);

CREATE TABLE consent_history (
    workspace_id  TEXT NOT NULL,
    contact_id    TEXT NOT NULL REFERENCES contacts (id),
    seq           BIGINT NOT NULL,
    status        TEXT NOT NULL,
    at            BIGINT,
    source        TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, contact_id, seq)
);

CREATE TABLE balances (
    workspace_id  TEXT PRIMARY KEY REFERENCES workspaces (id),
    free          BIGINT NOT NULL,
    reserved      BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- The ledger invariants, enforced by the database as a last line of defence.
    CHECK (free >= 0 AND reserved >= 0 AND free + reserved = total)
);

CREATE TABLE credits (
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    idempotency_key  TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount >= 0),
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, idempotency_key)
);

CREATE TABLE holds (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    hold_id       TEXT NOT NULL,
    amount        BIGINT NOT NULL CHECK (amount >= 0),
    status        TEXT NOT NULL CHECK (status IN ('open', 'charged', 'released')),
    created_at    BIGINT NOT NULL,
    resolved_at   BIGINT,
    PRIMARY KEY (workspace_id, hold_id)
);
CREATE INDEX holds_open ON holds (workspace_id, status);

CREATE TABLE ledger_entries (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    kind          TEXT NOT NULL CHECK (kind IN ('credit', 'hold', 'charge', 'release')),
    amount        BIGINT NOT NULL,
    reference     TEXT NOT NULL,
    free          BIGINT NOT NULL,
    reserved      BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX ledger_entries_workspace ON ledger_entries (workspace_id, created_at);

CREATE TABLE messages (
    id                   TEXT PRIMARY KEY,
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id),
    contact_id           TEXT NOT NULL REFERENCES contacts (id),
    channel              TEXT NOT NULL,
    direction            TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    content              TEXT NOT NULL,
    status               TEXT NOT NULL,
    provider_message_id  TEXT,
    error                TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX messages_contact ON messages (workspace_id, contact_id, created_at);

CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    url              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    enabled          BIGINT NOT NULL,
    disabled_reason  TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id);

-- The signed body is fixed at enqueue time so every retry sends the same bytes.
CREATE TABLE webhook_events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    event_type    TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES webhook_events (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    workspace_id     TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    lease_until      BIGINT,
    lease_token      TEXT,
    last_status      BIGINT,
    last_error       TEXT,
    last_attempt_at  BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_workspace ON webhook_deliveries (workspace_id, created_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, status);
CREATE INDEX webhook_deliveries_lease ON webhook_deliveries (lease_token);

CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempt      BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    http_status  BIGINT,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
