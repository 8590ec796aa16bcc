-- Memberships at district scale: a run creating a million users writes a million
-- `user_schools` rows in the same transaction. The foreign key to `users` made PostgreSQL
-- check each of them with a row lock on the user just inserted (a second write of every new
-- user row, in WAL too), for a rule the application already guarantees: users are never
-- deleted (they are archived), every membership is written by the SQL layer for a user it
-- has just written, and a district's removal cascades through `schools`. The key to
-- `schools` stays (a handful of rows, already locked by the run after the first check).
ALTER TABLE user_schools DROP CONSTRAINT user_schools_district_id_user_id_fkey;
