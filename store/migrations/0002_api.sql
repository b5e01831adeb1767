-- The API's tables: per-workspace API keys, idempotency records, the registry of composed
-- conversations, and a public id for every channel. Same portable vocabulary as 0001: TEXT
-- and BIGINT only.

-- A channel's public id (`ch_...`), unique across workspaces, so that an API call naming
-- another workspace's channel can be told apart from a typo. Rows that exist before this
-- migration get an id derived from their primary key, which is unique by construction; new
-- rows get a random one from the store.
ALTER TABLE channels ADD COLUMN id TEXT;
UPDATE channels SET id = 'ch_' || workspace_id || '_' || channel WHERE id IS NULL;
CREATE UNIQUE INDEX channels_id ON channels (id);

-- API keys are stored as the SHA-256 of the key (hex); only `prefix` (the first characters)
-- is kept in clear, so an operator can tell keys apart without being able to use them.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

-- One row per (workspace, Idempotency-Key): claimed `in_flight` by an insert before the
-- request runs, then `completed` with the response to replay. `locked_until` lets a request
-- whose process died be taken over instead of blocking its key for a day.
CREATE TABLE idempotency_keys (
    workspace_id     TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('in_flight', 'completed')),
    response_status  BIGINT,
    response_body    TEXT,
    created_at       BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL,
    completed_at     BIGINT,
    PRIMARY KEY (workspace_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Composed conversations, so the API can tell which workspace a conversation id belongs to
-- (the workflow id alone does not say) and answer 404 to every other workspace.
CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    channel       TEXT NOT NULL,
    channel_id    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX conversations_workspace ON conversations (workspace_id, created_at);
