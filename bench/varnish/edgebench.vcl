# Varnish configuration of the side-by-side benchmark (bench/cmd/edgebench).
# The harness fills in the origin's port ({{.OriginPort}}) and starts varnishd with
# -s malloc,<cache bytes>, so Varnish caches what the origin's Cache-Control allows, like
# edgevitals and nginx do. Purge-all is a ban from loopback (method BAN).
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "{{.OriginPort}}";
    .connect_timeout = 3s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 30s;
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "ban not allowed"));
        }
        # obj.* only, so the ban lurker can retire it in the background.
        ban("obj.status != 0");
        return (synth(200, "banned"));
    }
}

sub vcl_deliver {
    # X-Cache tells the harness that a warmed URL is a hit, as the others' headers do.
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
