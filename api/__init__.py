"""The taskaffinity service: REST API, job store and workers (imports ``affinity``)."""
