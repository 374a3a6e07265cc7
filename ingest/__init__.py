"""The MQTT consumer: batches, decodes, de-duplicates and stores meter frames."""
