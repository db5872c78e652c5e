"""Keep a tenant's Iceberg tables compact: small files rewritten, old snapshots
expired, orphaned files swept, the run ledger compacted.

Every daily load appends files and a snapshot to each raw table, and nothing
else removes them: a year of runs reads hundreds of small files per table and
carries hundreds of snapshots in every metadata file. The maintenance DAG
(`mozart_etl.factory.maintenance_dag`, one per tenant) runs these steps daily
at a quiet hour; each is safe beside a running load (see `compact.py` and
`expire.py` for why).

Stage package: no Airflow here, and importing this package is light (the heavy
modules are imported by the step modules, which only task callables import).
"""
