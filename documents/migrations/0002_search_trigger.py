"""Full-text search on PostgreSQL: a trigger that keeps `search_vector` current
and a GIN index over it. Nothing happens on SQLite (embedded mode), where
search is a plain contains match.

The vector covers the title (weight A) and the first 500,000 characters of the
content (weight B); PostgreSQL caps a tsvector at 1 MB, so on the rare text
that still overflows it falls back to the first 100,000 characters.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION documents_document_search_update() RETURNS trigger AS $$
BEGIN
  BEGIN
    NEW.search_vector :=
      setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A') ||
      setweight(to_tsvector('english', left(coalesce(NEW.content, ''), 500000)), 'B');
  EXCEPTION WHEN program_limit_exceeded THEN
    NEW.search_vector :=
      setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A') ||
      setweight(to_tsvector('english', left(coalesce(NEW.content, ''), 100000)), 'B');
  END;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER documents_document_search_trigger
BEFORE INSERT OR UPDATE OF title, content ON documents_document
FOR EACH ROW EXECUTE FUNCTION documents_document_search_update();

CREATE INDEX document_search_gin ON documents_document USING gin (search_vector);
"""

REVERSE = """
DROP INDEX IF EXISTS document_search_gin;
DROP TRIGGER IF EXISTS documents_document_search_trigger ON documents_document;
DROP FUNCTION IF EXISTS documents_document_search_update();
"""


class RunSQLOnPostgres(migrations.RunSQL):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("documents", "0001_initial")]

    operations = [RunSQLOnPostgres(FUNCTION, REVERSE)]
