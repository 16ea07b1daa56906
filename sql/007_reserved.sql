-- tollgate schema, migration 007: kept for the numbering.
SELECT 1;
