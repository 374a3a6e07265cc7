"""Bank transfers: virtual IBANs, statement parsers (MT940, CSV) and the statement importer."""
