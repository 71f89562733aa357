"""The orderlake benchmark: pipeline vs. the naive stage+MERGE design vs. a raw-append floor."""
