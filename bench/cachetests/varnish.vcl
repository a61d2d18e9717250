# Varnish as a plain shared cache in front of the cache-tests origin server,
# for bench/cachetests/run.sh, which fills in the @...@ placeholder.
#
# This is Debian's /etc/varnish/default.vcl with the backend pointed at the
# suite's server, and nothing else: the built-in VCL decides what is cached
# (GET/HEAD only, no Authorization or Cookie requests, no Set-Cookie or
# Vary: * responses, hit-for-miss for uncacheable ones). run.sh starts
# varnishd with the same parameters as the suite's own Varnish image
# (docker/serve.sh of http-tests/cache-tests): default_ttl=0 (no heuristic
# freshness for responses that carry none, which RFC 9111 leaves optional),
# default_grace=0 (serve nothing stale unless the origin says so) and
# default_keep=3600 (keep stale objects an hour so they can be revalidated
# with If-None-Match / If-Modified-Since).

vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
}
