-- Schema version 2: the last characters of each token, to tell tokens apart at a glance.
-- Not secret: in Tollgate's format they are part of the checksum. Empty for tokens issued
-- before hints were kept.
ALTER TABLE tollgate_tokens ADD COLUMN hint text NOT NULL DEFAULT '';
