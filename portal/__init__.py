"""The customer e-office (iBOK) and staff console: a Flask app."""
