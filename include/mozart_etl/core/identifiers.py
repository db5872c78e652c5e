"""SQL identifiers written by hand: one quoting for every engine we do it for.

Names from tenant.yaml (source tables and columns, rule columns) and from dbt
(marts, their columns) reach SQL that we compose as text: DuckDB (validation,
the warehouse reader), SQLite (the demo's source copy), and Jinja that dbt
renders for DuckDB or Trino. All of them take the SQL standard's delimited
identifier: the name in double quotes, an inner double quote doubled. Written
once here so that no module escapes a name its own way.

What a name may hold is decided earlier, by the config schema
(`config/models.py`: `SOURCE_IDENT_PATTERN` refuses quotes, backslashes and
control characters); quoting still doubles a quote, so a name that got past
the schema cannot end the identifier. Where a driver composes SQL itself
(psycopg's `sql.Identifier`, SQLAlchemy's `quoted_name`), use the driver's.
"""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """`name` as a delimited SQL identifier, an inner double quote doubled.

    SQL has no backslash escape in identifiers: a doubled quote is the one
    form every engine here reads back as the same name.
    """
    return '"' + name.replace('"', '""') + '"'


def qualified_name(*parts: str) -> str:
    """The parts (catalog, schema, table) each quoted, joined by dots: a dot
    inside a name stays part of that name."""
    return ".".join(quote_identifier(part) for part in parts)


__all__ = ["qualified_name", "quote_identifier"]
