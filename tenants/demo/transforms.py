"""The demo tenant's Python transforms (tenant.yaml: `transform: transforms:<fn>`).

Each function takes the table's validated rows as an iterator of Arrow record
batches and yields record batches with the table's declared columns; it runs as
the table's `transform` task, between validate and load.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc


def normalise_equipment_id(
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """`equipment_id` trimmed and upper-cased (` cmp-01 ` → `CMP-01`), as the
    equipment master spells it; the demo MES already does, so nothing changes."""
    for batch in batches:
        index = batch.schema.get_field_index("equipment_id")
        ids = pc.utf8_upper(pc.utf8_trim_whitespace(batch.column(index)))
        yield batch.set_column(index, "equipment_id", ids)
