DROP TABLE journal;
DROP TABLE mandates;
DROP TABLE usagers;
DROP TABLE memberships;
DROP TABLE aidants;
DROP TABLE organisations;
