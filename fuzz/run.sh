#!/bin/sh
# fuzz/run.sh TARGET [libFuzzer arguments...]
#
# Runs one fuzz target (websocket, accept, args, writers, sse, jwt, jwks)
# inside the packaged nginx: the sanitized module is loaded, the ASan
# runtime preloaded, fuzz/TARGET.dict given to libFuzzer if there is one,
# and the worker hands the process to libFuzzer, whose exit status this
# returns.  Without arguments libFuzzer fuzzes until stopped;
# files or directories of inputs are its corpus, or, with -runs=0 (or
# files only), what it replays.  Arguments are separated by blanks: none
# may hold one.  See fuzz/README.md.
#
#   FUZZ_BUILD   where the fuzz build is (build/fuzz)
#   NGINX        the nginx binary (/usr/sbin/nginx)
#   GRAVITEE_FUZZ_LOG=warn|info|debug   show the module's own log lines
#   GRAVITEE_FUZZ_STRICT=1   also check what the standards ask and the
#                code chose not to do (see README.md)

set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 TARGET [libFuzzer arguments...]" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
build=${FUZZ_BUILD:-$(dirname "$here")/build/fuzz}
module=$build/ngx_gravitee_fuzz_module.so
nginx=${NGINX:-/usr/sbin/nginx}
target=$1
shift

if [ ! -f "$module" ]; then
    echo "$0: no $module: make fuzz-build first" >&2
    exit 2
fi

# one directory per run: runs may go side by side (-jobs, -fork)
mkdir -p "$build/run/$target" "$build/artifacts/$target"
dir=$(mktemp -d "$build/run/$target/XXXXXX")
mkdir "$dir/tmp"
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

# what libFuzzer runs to run itself again (-minimize_crash, -merge=1, -jobs)
self=$build/run/$target/fuzz
if [ ! -x "$self" ]; then
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$here/run.sh" "$target" \
        > "$self.$$"
    chmod +x "$self.$$"
    mv "$self.$$" "$self"
fi

cat > "$dir/nginx.conf" <<EOF
# written by fuzz/run.sh for the fuzz target "$target"
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr warn;

load_module $module;

env GRAVITEE_FUZZ_TARGET;
env GRAVITEE_FUZZ_ARGS;
env GRAVITEE_FUZZ_ARGV0;
env GRAVITEE_FUZZ_LOG;
env GRAVITEE_FUZZ_STRICT;
env ASAN_OPTIONS;
env UBSAN_OPTIONS;
env LSAN_OPTIONS;

events {
    worker_connections 64;
}

http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    # requests of the websocket target: small pools, so that most of what
    # is allocated from them is malloc()'d alone and ASan sees its bounds
    request_pool_size 112;

    server {
        # never connected to: the targets make their own connections
        listen unix:$dir/nginx.sock;
    }
}
EOF

asan=$(clang -print-file-name=libclang_rt.asan-"$(uname -m)".so)

GRAVITEE_FUZZ_TARGET=$target
GRAVITEE_FUZZ_ARGS="-artifact_prefix=$build/artifacts/$target/ $*"

# the target's tokens (JSON members, algorithm names), as libFuzzer reads
if [ -f "$here/$target.dict" ]; then
    GRAVITEE_FUZZ_ARGS="-dict=$here/$target.dict $GRAVITEE_FUZZ_ARGS"
fi
GRAVITEE_FUZZ_ARGV0=$self
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# reports known and being fixed, to fuzz past them: build/fuzz/ubsan.supp
if [ -f "$build/ubsan.supp" ]; then
    UBSAN_OPTIONS="$UBSAN_OPTIONS:suppressions=$build/ubsan.supp"
fi
export GRAVITEE_FUZZ_TARGET GRAVITEE_FUZZ_ARGS GRAVITEE_FUZZ_ARGV0
export ASAN_OPTIONS UBSAN_OPTIONS

status=0
LD_PRELOAD=$asan "$nginx" -p "$dir" -c "$dir/nginx.conf" -e stderr || status=$?
exit $status
