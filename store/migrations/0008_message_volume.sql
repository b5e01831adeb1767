-- A channel's monthly outbound volume (the `tier` of a send's billing block) is counted per
-- workspace, channel and direction since the month began.
CREATE INDEX messages_volume ON messages (workspace_id, channel, direction, created_at);
