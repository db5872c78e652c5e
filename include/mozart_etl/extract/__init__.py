"""Extract: stream source rows into the immutable Parquet lake."""
