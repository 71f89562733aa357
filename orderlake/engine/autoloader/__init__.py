"""The local Auto Loader: the `cloudFiles` reader, which files an update takes, checking and
moving them, and the per-update file ledger that makes ingestion crash-safe."""
