"""Looking at a warehouse without a JVM: Delta logs, the event log, quarantine rows."""
