"""Mozart ETL: multi-tenant MES/APS pipelines on Apache Airflow 3.

Stage packages (config, extract, validate, load, dbt) never import Airflow;
only `mozart_etl.factory` turns them into DAGs and tasks.
"""

import os

__version__ = "0.1.0"

# Arrow's allocator, read when pyarrow first allocates (an explicit setting
# wins). jemalloc hands freed pages back to the system; the default, mimalloc,
# keeps them, so a process that runs several tasks (`dag.test`, a reused worker)
# carried each stage's peak into the next: the 1M-row run of bench/e2e.py peaked
# at 1 163 MB with mimalloc and 893 MB with jemalloc, in the same time.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
