-- What an API key may do: 'read' (GET only), 'send' (read, and messages, conversations,
-- windows), or 'admin' (everything, workspace settings, webhooks and templates included).
-- Keys created before scopes existed could do everything, so they stay 'admin'.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
