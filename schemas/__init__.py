"""The data contract: SQL migrations and their runner, the MQTT envelope, storage mode."""
