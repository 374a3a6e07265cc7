"""meterflow: remote meter reading, ingest, billing and the customer e-office."""

__version__ = "0.1.0"
