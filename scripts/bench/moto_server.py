"""moto's server with its request routing memoized, for the fleet benchmark.

moto's server picks the backend of every request by listing its own package directory
(a stat per module) and matching the host against every service's URL patterns, under
one lock. On the benchmark's fleet that routing is about a third of moto's time per
request, and moto serves a single core: the emulator, not the tools, sets the pace.
Routing depends only on the host derived from the request and on the installed package,
so it is computed once per host here; everything else is moto's own server, unchanged.

    python scripts/bench/moto_server.py [moto_server arguments]

Used by tests/e2e/bench.rs (fleet_benchmark) unless ECR_FLEET_BENCH_MOTO=stock.
"""

import sys

from moto import backends
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

if __name__ == "__main__":
    main(sys.argv[1:])
