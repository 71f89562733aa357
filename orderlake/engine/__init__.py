"""The local engine: runs the dlt/ pipeline definitions on local PySpark + Delta Lake."""
