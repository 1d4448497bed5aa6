"""The SQL core both SQL stores share: what a table holds and how a row reads is written here
once, and each store keeps only its driver, its transactions and its commit path.

* :mod:`.dialect`: how SQLite and PostgreSQL spell the same thing (types, placeholders, the
  order packs and templates were stored in, the table prefix);
* :mod:`.rows`: the pack projection (the columns the queries read beside the folded state) and
  the codecs between rows and library values, with the decode caches;
* :mod:`.schema`: the schema steps (V1 tables, V2 ``commands`` and the refold, V3 the pending
  expiry) and every statement the core runs;
* :mod:`.core`: the driver seam (:class:`~.core.Session`), schema upgrades, practice opening
  and :class:`~.core.SqlRepository`, the reads, templates, preferences and snapshot repair
  both stores serve the same way;
* :mod:`.commit`: the commit as the core's statements in the caller's transaction (the SQLite
  and SQLAlchemy stores'; the PostgreSQL store sends the same writes as one function call);
* :mod:`.postgres_schema`: PostgreSQL's commit functions and schema steps, without a driver;
* :mod:`.tables`: the schema as SQLAlchemy Core tables, for a host's migrations;
* :mod:`.sqlite_errors` and :mod:`.postgres_errors`: each driver's errors as the library's,
  one table a driver (the PostgreSQL one imports psycopg, so only the stores on it load it).
"""
