"""moto's server with its request routing memoized, for the fleet benchmark.

moto's server picks the backend of every request by listing its own package directory
(a stat per module) and matching the host against every service's URL patterns, under
one lock; and it indexes a service's error shapes anew for every error it answers. On the
benchmark's fleet that is about a third of moto's time per request, and moto serves from
a single core: the emulator, not the tools, would set the pace. Both depend only on the
installed package (and the request's host), so here they are computed once; everything
else is moto's own server, unchanged.

    python scripts/bench/moto_server.py [moto_server arguments]

Used by tests/e2e/bench.rs (fleet_benchmark) unless ECR_FLEET_BENCH_MOTO=stock.
"""

import sys

from moto import backends
from moto.core import errors
from moto.moto_server import werkzeug_app
from moto.server import main

_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

_route = werkzeug_app.DomainDispatcherApplication.get_backend_for_host
_routes = {}


def _memoized_route(self, host):
    if host not in _routes:
        _routes[host] = _route(self, host)
    return _routes[host]


werkzeug_app.DomainDispatcherApplication.get_backend_for_host = _memoized_route

# moto makes a new factory, with an empty cache, for every error it serializes.
_error_lookups = errors.ErrorLookupFactory()
errors.ErrorLookupFactory = lambda: _error_lookups

if __name__ == "__main__":
    main(sys.argv[1:])
