"""The shared core: errors, the production-day calendar, the lake and its
Parquet files, credentials, identifiers, the run's variables; what every stage
and the Airflow layer build on, importing nothing of theirs."""
