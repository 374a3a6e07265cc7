"""Frame codecs (pure functions, bytes in, records out), meter drivers and field collectors."""
