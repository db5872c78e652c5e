"""Load: accepted rows into raw Iceberg tables, one atomic snapshot per write."""
