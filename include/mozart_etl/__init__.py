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

# pyarrow imports numpy, so every process of ours loads OpenBLAS, whose helper
# threads then spin: 0.12 CPU-s per process, measured after `import numpy`,
# taken from the database and the other stages on a 2-core worker. Nothing here
# multiplies matrices.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
