# ngx_gravitee_module
#
#   make           build build/ngx_gravitee_module.so against Debian's nginx
#   make deps      install the Debian packages the build, demo and tests need
#   make demo      deps, build, then run conf-examples/quickstart.conf
#   make test      deps, build, then the Test::Nginx suites in t/
#   make valgrind  the suites again with every nginx under valgrind
#   make bench     build, then bench/run.sh: ours and Nchan side by side
#   make fuzz      the fuzz targets, FUZZ_TIME seconds each (fuzz/README.md)
#   make NGINX_SRC=/path/to/nginx-1.x   build against an upstream tree

NGINX_SRC   ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
BUILD       ?= $(CURDIR)/build
MODULE      := $(BUILD)/ngx_gravitee_module.so
SOURCES     := config $(shell find src -name '*.[ch]' 2>/dev/null)

# what the build, the demo and the tests use, by Debian package name
DEB_PACKAGES := nginx nginx-dev gcc make dpkg-dev libssl-dev libjansson-dev \
                librdkafka-dev libpaho-mqtt-dev libtest-base-perl \
                libprotocol-websocket-perl libio-socket-ssl-perl \
                libwww-perl curl openssl procps chromium kcat \
                clang libclang-rt-14-dev mosquitto mosquitto-clients

.PHONY: all deps demo test valgrind bench clean check-config

all: $(MODULE)

$(MODULE): $(BUILD)/Makefile $(SOURCES)
	$(MAKE) -f $(BUILD)/Makefile -C $(NGINX_SRC) modules

# Debian's way (dh nginx_mod): its configure flags from conf_flags, the
# package build flags, then our module; an upstream tree gets --with-compat.
$(BUILD)/Makefile: config
	mkdir -p $(BUILD)
	cd $(NGINX_SRC) && bash -c ' \
	    if [ -f ./conf_flags ]; then . ./conf_flags; \
	    else NGX_CONF_FLAGS=(--with-compat --with-http_ssl_module \
	                         --with-http_v2_module); fi; \
	    ./configure \
	        --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC \
	                       $$(dpkg-buildflags --get CPPFLAGS)" \
	        --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	        "$${NGX_CONF_FLAGS[@]}" \
	        --add-dynamic-module=$(CURDIR) --builddir=$(BUILD)'

# the Kafka-protocol broker of the Kafka suites, from librdkafka's mock
# cluster (Debian has no Kafka); also by its name relative to here, e.g.
# "make build/kafka-mock-broker".  Unused parameters are allowed, as in
# NGINX's own build.
$(sort $(BUILD)/kafka-mock-broker $(BUILD:$(CURDIR)/%=%)/kafka-mock-broker): \
        t/broker/kafka-mock-broker.c
	mkdir -p $(@D)
	cc -O2 -Wall -Wextra -Wno-unused-parameter -Werror -o $@ $< \
	    $$(pkg-config --cflags --libs rdkafka 2>/dev/null || echo -lrdkafka)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# the module loads into the packaged binary and a configuration parses
# (the examples load modules/ngx_gravitee_module.so from their prefix)
check-config: $(MODULE) $(BUILD)/demo/modules
	$(NGINX) -t -q -p $(BUILD)/demo/ -e stderr \
	    -c $(CURDIR)/conf-examples/quickstart.conf

$(BUILD)/demo/modules:
	mkdir -p $(BUILD)/demo/logs
	ln -sfn $(BUILD) $(BUILD)/demo/modules

demo: deps
	$(MAKE) all $(BUILD)/demo/modules
	@echo "quickstart API on http://127.0.0.1:8082/qs-message-api (Ctrl-C stops)"
	$(NGINX) -p $(BUILD)/demo/ -e stderr \
	    -g 'daemon off; master_process off; pid $(BUILD)/demo/nginx.pid;' \
	    -c $(CURDIR)/conf-examples/quickstart.conf

test: deps
	$(MAKE) all $(BUILD)/kafka-mock-broker fuzz-build
	PATH=/usr/sbin:$$PATH PERL5LIB=$(CURDIR)/t/lib \
	TEST_NGINX_LOAD_MODULES=$(MODULE) \
	    prove -r t/

# a build of its own, made with valgrind's header: under valgrind the
# module's free list of message blocks steps aside (ngx_gravitee_message.c)
valgrind: deps
	$(MAKE) deps DEB_PACKAGES=valgrind
	$(MAKE) all $(BUILD)/valgrind-build/kafka-mock-broker \
	    BUILD=$(BUILD)/valgrind-build
	t/valgrind.sh $(BUILD)/valgrind-build/ngx_gravitee_module.so

# by hand, not in make test: about 10 minutes, wants an otherwise idle machine
bench: all
	$(MAKE) deps DEB_PACKAGES="libnginx-mod-nchan util-linux iproute2"
	$(MAKE) -C bench
	bench/run.sh

clean:
	rm -rf $(BUILD) t/servroot*

include fuzz/fuzz.mk
