"""The `dp` API as the definitions see it, the dataset/flow graph it builds, and the loader
that runs the definition files with that API bound: everything about *what* the pipeline is."""
