# ngx_gravitee_module: the fuzz targets (fuzz/README.md), included by the
# top-level Makefile.
#
#   make fuzz-build   build/fuzz/ngx_gravitee_fuzz_module.so: the module and
#                     its fuzz drivers, clang, ASan, UBSan, libFuzzer
#   make fuzz         each target for FUZZ_TIME seconds (300) on its corpus;
#                     new inputs go to build/fuzz/corpus/<target>, crashes to
#                     build/fuzz/artifacts/<target>
#   make fuzz FUZZ_TARGETS="websocket sse" FUZZ_TIME=60
#   make fuzz-replay FUZZ_TARGET=websocket FUZZ_INPUTS=fuzz/corpus/websocket
#                     the inputs (files, or directories), once each

FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_MODULE  := $(FUZZ_BUILD)/ngx_gravitee_fuzz_module.so
FUZZ_SOURCES := $(wildcard fuzz/config fuzz/*.[ch])
FUZZ_TARGETS ?= websocket accept args writers sse jwt jwks
FUZZ_TIME    ?= 300
FUZZ_ARGS    ?=

# Coverage for libFuzzer, ASan and UBSan.  UBSan's checks are recoverable,
# but run.sh has it halt at the first report (libFuzzer keeps the input),
# so that build/fuzz/ubsan.supp, if there is one, can let a known report by
# while it is being fixed.  The configure tests link with the
# static sanitizer runtimes and run; the module links to the shared one,
# which run.sh preloads into nginx (fuzz/config adds libFuzzer itself).
# Not _FORTIFY_SOURCE: its __memcpy_chk() and friends escape ASan.  The
# sed below: clang lets ../config's -Wextra, which comes last, turn on
# -Wunused-parameter again, which gcc keeps off as NGINX's build asks.
FUZZ_CC_OPT  := -O1 -fno-omit-frame-pointer -fPIC -Wdate-time \
                -fsanitize=fuzzer-no-link,address,undefined
FUZZ_LD_OPT  := -fPIC -fsanitize=address,undefined

.PHONY: fuzz fuzz-build fuzz-replay

fuzz-build: $(FUZZ_MODULE)

$(FUZZ_MODULE): $(FUZZ_BUILD)/Makefile $(SOURCES) $(FUZZ_SOURCES)
	$(MAKE) -f $(FUZZ_BUILD)/Makefile -C $(NGINX_SRC) modules

# as $(BUILD)/Makefile, with clang, and GRAVITEE_FUZZ for ../config
$(FUZZ_BUILD)/Makefile: config fuzz/config fuzz/fuzz.mk
	mkdir -p $(FUZZ_BUILD)
	cd $(NGINX_SRC) && GRAVITEE_FUZZ=$(CURDIR)/fuzz bash -c ' \
	    if [ -f ./conf_flags ]; then . ./conf_flags; \
	    else NGX_CONF_FLAGS=(--with-compat --with-http_ssl_module \
	                         --with-http_v2_module); fi; \
	    ./configure --with-cc=clang \
	        --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) $(FUZZ_CC_OPT)" \
	        --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) $(FUZZ_LD_OPT)" \
	        "$${NGX_CONF_FLAGS[@]}" \
	        --add-dynamic-module=$(CURDIR) --builddir=$(FUZZ_BUILD)'
	sed -i -e '/^CFLAGS = /s/$$/ -Wno-unused-parameter/' $(FUZZ_BUILD)/Makefile

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz target $$t, $(FUZZ_TIME) s"; \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    fuzz/run.sh $$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	        $(FUZZ_ARGS) $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t \
	        || exit 1; \
	done

fuzz-replay: fuzz-build
	@test -n "$(FUZZ_TARGET)" -a -n "$(FUZZ_INPUTS)" \
	    || { echo "make fuzz-replay FUZZ_TARGET=... FUZZ_INPUTS=..."; exit 2; }
	fuzz/run.sh $(FUZZ_TARGET) -runs=0 $(FUZZ_ARGS) $(FUZZ_INPUTS)
