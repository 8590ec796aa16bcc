-- The Classes screens at district scale (40,000 classes, 3,000,000 enrollments), on top of
-- 0017's indexes. SQL that uses them: src/db/classes.rs.

-- Teachers are a few percent of enrollments: small partial indexes serve what the screens
-- ask of them without reading a class's students.
-- A page's teacher column (the teachers of 50 classes) and the class page's teachers.
CREATE INDEX enrollments_class_teachers_idx ON enrollments (district_id, class_id, user_id)
    INCLUDE (is_primary) WHERE role = 'teacher';
-- Search by teacher name: the classes of the teachers the users' trigram index finds (a
-- common name matches thousands of students; each is one probe of this small index).
CREATE INDEX enrollments_teacher_classes_idx ON enrollments (district_id, user_id, class_id)
    WHERE role = 'teacher';

-- The term filter, in the list's title order (keyset pages without a sort).
CREATE INDEX classes_term_title_idx ON classes (district_id, term_id, lower(title), id);
-- Search by part of a class external ID (0017 indexes the title's trigrams only).
CREATE INDEX classes_external_id_trgm_idx ON classes USING gin (lower(external_id) gin_trgm_ops);
