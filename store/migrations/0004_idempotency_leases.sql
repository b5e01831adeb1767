-- An in-flight Idempotency-Key claim belongs to one live request: `lease_owner` names it (a
-- random id per request), and `locked_until` becomes its lease, a few seconds out and renewed
-- while the request runs. Only the owner may renew, complete or release the claim; a claim
-- whose lease ran out (its process died) is taken over by a retry, which becomes the owner.
-- Rows written before this migration have no owner: their old two-minute lock runs out and
-- they are taken over like any other dead claim.
ALTER TABLE idempotency_keys ADD COLUMN lease_owner TEXT;
