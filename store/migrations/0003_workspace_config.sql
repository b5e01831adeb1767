-- Workspace configuration through the API and the CLI: who topped a balance up and why, and the
-- registry of message templates. Same portable vocabulary as 0001: TEXT and BIGINT only.

-- A top-up is a credit with an author and a reason. `actor_kind` is `api_key` (`actor` is the
-- key's id) or `operator` (`actor` is the name given to `convo workspace top-up --by`). Credits
-- written before this migration (opening balances) have neither.
ALTER TABLE credits ADD COLUMN actor_kind TEXT;
ALTER TABLE credits ADD COLUMN actor TEXT;
ALTER TABLE credits ADD COLUMN reason TEXT;

-- A credit's ledger entry is found by its reference (the credit's idempotency key).
CREATE INDEX ledger_entries_reference ON ledger_entries (workspace_id, reference);

-- A workspace's templates, one per name. `variables` is the JSON array of the variable names
-- the body declares (`["1", "2"]` for positional `{{1}}` placeholders, or names).
CREATE TABLE templates (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    channel       TEXT NOT NULL,
    language      TEXT NOT NULL,
    body          TEXT NOT NULL,
    variables     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
