-- A template is registered per workspace *and channel*: `order_update` on WhatsApp and on RCS
-- are two templates (each provider approves its own). The primary key gains the channel; the
-- table is rebuilt because neither SQLite nor Postgres can widen a primary key in place the
-- same way. Every existing template keeps its channel.
CREATE TABLE templates_by_channel (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    channel       TEXT NOT NULL,
    language      TEXT NOT NULL,
    body          TEXT NOT NULL,
    variables     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    category      TEXT NOT NULL DEFAULT 'UTILITY',
    status        TEXT NOT NULL DEFAULT 'APPROVED',
    components    TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (workspace_id, channel, name)
);
INSERT INTO templates_by_channel
    (workspace_id, name, channel, language, body, variables, created_at, category, status,
     components)
SELECT workspace_id, name, channel, language, body, variables, created_at, category, status,
       components
FROM templates;
DROP TABLE templates;
ALTER TABLE templates_by_channel RENAME TO templates;
