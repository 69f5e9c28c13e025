ALTER TABLE organisations DROP COLUMN mandates_bound_to_creator;
