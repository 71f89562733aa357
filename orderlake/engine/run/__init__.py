"""One pipeline update: ordering and running the flows, expectations, AUTO CDC, streaming
reads of Delta tables, per-flow state and the event log."""
