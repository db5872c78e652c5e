"""Operations: what people run beside the pipeline, by hand or around Airflow.

The `mozart` command line (`cli`), reports of the run ledger (`report`), the
orphan sweep (`sweep`), scaffolding a tenant (`scaffold`), and running tenants
on one machine the way production runs them: `mozart run` (days through
Airflow), `mozart pools`, and `make up` (a local Airflow). The pipeline's
stages import nothing from here.
"""
