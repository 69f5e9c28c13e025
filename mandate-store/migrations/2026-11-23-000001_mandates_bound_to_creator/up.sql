-- An organisation may bind each mandate to the aidant who created it (default: any aidant of
-- the organisation may use it).
ALTER TABLE organisations ADD COLUMN mandates_bound_to_creator BOOLEAN NOT NULL DEFAULT FALSE;
