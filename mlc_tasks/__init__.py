"""Building blocks of every MLC process: plain Python, importable without a Prefect server."""
