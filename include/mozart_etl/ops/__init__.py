"""Running tenants on one machine the way production runs them: `mozart run`
(days through Airflow), `mozart pools`, and `make up` (a local Airflow)."""
