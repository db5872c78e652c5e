"""The run's lifecycle without Airflow: what a sync reads, then the stages."""
