-- Templates get what a provider's registry keeps besides the body: a category (`MARKETING`,
-- `UTILITY`, `AUTHENTICATION`), an approval status (`APPROVED`, `PENDING`, `REJECTED`) and
-- the other components with their placeholders (header, footer, e-mail subject, buttons,
-- carousel cards) as one JSON object. Templates registered before keep working as approved
-- utility templates with a body only.
ALTER TABLE templates ADD COLUMN category TEXT NOT NULL DEFAULT 'UTILITY';
ALTER TABLE templates ADD COLUMN status TEXT NOT NULL DEFAULT 'APPROVED';
ALTER TABLE templates ADD COLUMN components TEXT NOT NULL DEFAULT '{}';
