#!/usr/bin/env bash
# Runs the suites with every nginx under valgrind (memcheck), then fails on
# any invalid access or use of uninitialised memory, and on any leak whose
# allocation passes through the module.  NGINX's own leaks at exit (its
# environment copy, event arrays, the cycle of a refused configuration) are
# not ours and are not counted, nor is Cyrus SASL's process-wide state,
# which librdkafka's first rd_kafka_new() sets up (sasl_client_init) and
# nothing ever frees.  --keep-debuginfo: the module is unloaded at exit,
# and its frames must still have names for the leaks to be told apart.
#
#   make valgrind        (about 15 minutes)
#   t/valgrind.sh $PWD/build/ngx_gravitee_module.so t/810-plans.t ...

set -euo pipefail
cd "$(dirname "$0")/.."

module=${1:?usage: t/valgrind.sh /abs/path/ngx_gravitee_module.so [suite.t...]}
shift
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(-r t/)
# a module built without valgrind's header keeps its free list of message
# blocks under valgrind, where a use after free would go unseen
# (nm's whole output first: grep -q stops reading, and under pipefail
# nm's SIGPIPE would fail the check)
symbols=$(nm -D --defined-only "$module")
grep -qw ngx_gravitee_message_valgrind_aware <<<"$symbols" \
    || { echo "$module was built without <valgrind/valgrind.h>: use make valgrind" >&2
         exit 1; }

logs=$(dirname "$module")/valgrind
rm -rf "$logs"
mkdir -p "$logs"

cat > "$logs/nginx" <<WRAP
#!/bin/sh
exec valgrind --trace-children=yes --leak-check=full --keep-debuginfo=yes \
    --show-leak-kinds=definite --num-callers=30 \
    --log-file=$logs/%p.log /usr/sbin/nginx "\$@"
WRAP
chmod +x "$logs/nginx"

# the suites give valgrind's slower worker more time, and leave out what
# valgrind's own memory makes meaningless (a worker's RSS)
GRAVITEE_UNDER_VALGRIND=1 \
TEST_NGINX_BINARY=$logs/nginx TEST_NGINX_TIMEOUT=10 PATH=/usr/sbin:$PATH \
PERL5LIB=$PWD/t/lib TEST_NGINX_LOAD_MODULES=$module \
    prove "${suites[@]}"

bad=$(grep -l -E 'Invalid (read|write|free)|uninitialised|Mismatched free' \
      "$logs"/*.log || true)
leaks=$(awk '/are definitely lost/  { rec = 1; ours = 0; sasl = 0; next }
            rec && /ngx_gravitee/     { ours = 1 }
            rec && /sasl_client_init/ { sasl = 1 }
            rec && /^==[0-9]+== $/    { if (ours && !sasl) print FILENAME;
                                        rec = 0 }' "$logs"/*.log | sort -u)

if [ -n "$bad$leaks" ]; then
    echo "valgrind found errors in: $bad $leaks"
    exit 1
fi

echo "valgrind: $(ls "$logs"/*.log | wc -l) nginx processes, no invalid access, no leak of the module"
