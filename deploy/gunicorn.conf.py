"""gunicorn settings of the meterflow portal (``gunicorn -c deploy/gunicorn.conf.py
"portal:create_app()"``); values come from the same METERFLOW_* settings as everything else.

Workers are independent processes: sessions and rate limits live in PostgreSQL, so any
worker may serve any request. The app is not preloaded: each worker opens its own pool.
Its modules are, though: the master imports them once, so a worker forked to replace a
recycled one (max_requests) builds the app in a fraction of a second instead of importing
Flask, pandas and the billing engine again while requests wait.
"""

import importlib

from meterflow.settings import Settings

for _module in ("portal.auth", "portal.customer", "portal.payments", "portal.staffconsole"):
    importlib.import_module(_module)

_settings = Settings.from_env()

bind = _settings.portal_bind
workers = _settings.portal_workers
# Threads let a worker overlap database waits; the pool (8 per worker) covers them.
worker_class = "gthread"
threads = 4
preload_app = False
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak never grows without bound.
max_requests = 5000
max_requests_jitter = 500
limit_request_line = 4094
limit_request_fields = 100
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()
# The reverse proxy in front (it terminates TLS) is trusted for X-Forwarded-* only when
# METERFLOW_PORTAL_PROXY_HOPS > 0; the app applies ProxyFix itself.
forwarded_allow_ips = "127.0.0.1,::1"
proc_name = "meterflow-portal"
