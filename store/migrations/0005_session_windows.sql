-- Windows convo reported open (conversation.started) and has not reported ended. A session
-- run that is terminated, fails or times out never emits its conversation.ended: the
-- reconciler finds such rows whose session no longer runs, settles the contact's holds and
-- emits the ended event itself.
CREATE TABLE session_windows (
    session_id    TEXT NOT NULL,
    conversation  BIGINT NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    contact_id    TEXT NOT NULL,
    channel       TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (session_id, conversation)
);
CREATE INDEX session_windows_recorded ON session_windows (recorded_at);
