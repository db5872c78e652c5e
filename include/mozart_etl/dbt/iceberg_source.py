"""dbt-duckdb plugin: raw Iceberg tables streamed into DuckDB a batch at a time.

dbt-duckdb's built-in `iceberg` plugin gives DuckDB `scan().to_arrow()`: the
whole raw table in memory, and then DuckDB's copy of it (the 1M-row demo's
staging peaked at 1.1 GB). Same settings and scan options; the scan goes to
DuckDB as a record batch reader, which its `CREATE TABLE … AS SELECT` drains.
Imported by dbt at run time only (the profile names it), never on the DAG
parse path.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dbt.adapters.duckdb.plugins.iceberg import Plugin as IcebergPlugin
from dbt.adapters.duckdb.utils import SourceConfig

# The scan options dbt-duckdb's plugin passes on, all of them.
SCAN_KEYS = (
    "row_filter",
    "selected_fields",
    "case_sensitive",
    "snapshot_id",
    "options",
    "limit",
)


class Plugin(IcebergPlugin):
    def load(self, source_config: SourceConfig) -> pa.RecordBatchReader:
        table_format = source_config.get("iceberg_table", "{schema}.{identifier}")
        table = self._catalog.load_table(table_format.format(**source_config.as_dict()))
        scan: dict[str, Any] = {
            key: source_config[key] for key in SCAN_KEYS if key in source_config
        }
        return table.scan(**scan).to_arrow_batch_reader()
