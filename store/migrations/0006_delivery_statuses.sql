-- Delivery statuses (queued → sent → delivered → read, or failed). `messages.delivery_status`
-- is an outbound message's current status, moved only forward by a compare-and-set; each move
-- is one row of `message_statuses` (one per status, so a repeated callback adds nothing).
ALTER TABLE messages ADD COLUMN delivery_status TEXT;
UPDATE messages SET delivery_status = CASE status
        WHEN 'queued' THEN 'queued'
        WHEN 'accepted' THEN 'sent'
        WHEN 'rejected' THEN 'failed'
    END
    WHERE direction = 'outbound';
CREATE INDEX messages_provider_id ON messages (workspace_id, provider_message_id);

CREATE TABLE message_statuses (
    message_id     TEXT NOT NULL REFERENCES messages (id),
    status         TEXT NOT NULL
                   CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed')),
    error_code     TEXT,
    error_message  TEXT,
    source         TEXT NOT NULL,
    provider_at    BIGINT,
    recorded_at    BIGINT NOT NULL,
    PRIMARY KEY (message_id, status)
);

-- Why a hold was released when it was not the session's own decision (a late delivery
-- failure), and the same reason on its ledger entry.
ALTER TABLE holds ADD COLUMN release_reason TEXT;
ALTER TABLE ledger_entries ADD COLUMN reason TEXT;
