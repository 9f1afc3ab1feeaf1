# Concerto build. `make` builds build/concerto; `make check` runs every test (tools/check).
# Out of tree: objects go to $(BUILD). MODE=san builds with AddressSanitizer and
# UndefinedBehaviorSanitizer (the test suite uses build/san).

MODE ?= release
ifeq ($(MODE),san)
BUILD ?= build/san
else
BUILD ?= build
endif

CC ?= cc
PKGS := libh2o-evloop jansson sqlite3 libpq libsodium openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla -Werror
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(WARN) -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) -pthread
ifeq ($(MODE),san)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
OPT := -O2 -g
endif
CFLAGS ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(OPT) $(CFLAGS)
LDLIBS := $(PKG_LIBS) -lm -pthread

LAYERS := base fhir store repo auth care hl7 http cli
LIB_SRC := $(foreach l,$(filter-out cli,$(LAYERS)),$(wildcard src/$(l)/*.c)) \
           $(filter-out src/cli/main.c,$(wildcard src/cli/*.c))
LIB_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB := $(BUILD)/libconcerto.a

UNIT_SRC := $(wildcard tests/unit/*/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

FUZZ_SRC := $(wildcard tests/fuzz/*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_OBJ := $(patsubst src/%.c,build/fuzz/obj/%.o,$(LIB_SRC))
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Isrc -Ibuild/gen $(PKG_CFLAGS) -pthread -g -O1 \
               -fno-omit-frame-pointer -fsanitize=address,undefined

FHIRPATH_SUITE := $(BUILD)/tests/fhir/fhirpath_suite

.PHONY: all clean check run unit layers format-check fuzz fhirpath-suite bench-fhirpath \
        bench-search bench-outbox bench-population bench-access bench-worklist \
        bench-engine bench-hl7 bench-web
all: $(BUILD)/concerto

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The built-in holiday lists: data/holidays/NAME.tsv as a C string in $(BUILD)/gen (and
# build/gen for the fuzzers).
%/gen/us_federal_holidays.h: data/holidays/us-federal.tsv
	@mkdir -p $(dir $@)
	{ echo '/* generated from $< by the Makefile */'; \
	  echo 'static const char calendar__us_federal_tsv[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/base/calendar.o: $(BUILD)/gen/us_federal_holidays.h

# The built-in protocols: data/protocols/NAME.json as C strings, with their names, in
# $(BUILD)/gen (and build/gen for the fuzzers).
PROTOCOLS := $(sort $(wildcard data/protocols/*.json))
%/gen/builtin_protocols.h: $(PROTOCOLS)
	@mkdir -p $(dir $@)
	{ echo '/* generated from data/protocols by the Makefile */'; \
	  for f in $(PROTOCOLS); do \
	    v=$$(basename $$f .json | tr -- '-' '_'); \
	    echo "static const char care__protocol_$$v[] ="; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $$f; \
	    echo ';'; \
	  done; \
	  echo 'static const struct {'; \
	  echo '    const char *name, *json;'; \
	  echo '} care__protocols[] = {'; \
	  for f in $(PROTOCOLS); do \
	    n=$$(basename $$f .json); v=$$(echo $$n | tr -- '-' '_'); \
	    echo "    {\"$$n\", care__protocol_$$v},"; \
	  done; \
	  echo '};'; \
	  echo 'static const size_t care__nprotocols = sizeof(care__protocols) / sizeof(care__protocols[0]);'; \
	} > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/care/builtin.o: $(BUILD)/gen/builtin_protocols.h

# The coordinators' web app (web/): bundled by esbuild and written as C arrays by
# web/build.mjs into $(BUILD)/gen (and build/gen for the fuzzers); web/node_modules comes from
# tools/install-deps.
WEB_SRC := web/build.mjs web/package-lock.json $(wildcard web/src/*)
%/gen/web_assets.h: $(WEB_SRC)
	@test -d web/node_modules/esbuild || { echo "web/node_modules is missing: run tools/install-deps"; exit 1; }
	node web/build.mjs $@
$(BUILD)/obj/http/web.o: $(BUILD)/gen/web_assets.h

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/concerto: $(BUILD)/obj/cli/main.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -MMD -MP -o $@ $< $(LIB) $(LDLIBS) -lcmocka

unit: $(UNIT_BIN) $(FHIRPATH_SUITE)

# The FHIRPath conformance suite: a driver binary and the runner that feeds it the cases.
$(FHIRPATH_SUITE): tests/fhirpath/suite.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -o $@ $< $(LIB) $(LDLIBS)

fhirpath-suite: $(FHIRPATH_SUITE)
	/usr/bin/python3 tests/fhirpath/run-suite --binary $(FHIRPATH_SUITE)

# Evaluations per second of typical search-parameter expressions (figures: the release build).
bench-fhirpath: $(BUILD)/bench/fhirpath
$(BUILD)/bench/fhirpath: bench/fhirpath.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Writes with and without index rows, and searches of each kind against a read by id.
bench-search: $(BUILD)/bench/search
$(BUILD)/bench/search: bench/search.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# What the access policy's filter costs a search (no caller, a service, a staff member).
bench-access: $(BUILD)/bench/access
$(BUILD)/bench/access: bench/access.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# A coordinator's worklist over 2,000 patients and 20,000 open Tasks: p50 and p99 latency.
bench-worklist: $(BUILD)/bench/worklist
$(BUILD)/bench/worklist: bench/worklist.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Change events per second through the coordination engine (protocols, jobs, notifications).
bench-engine: $(BUILD)/bench/engine
$(BUILD)/bench/engine: bench/engine.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# ADT messages per second through the HL7 feed: MLLP, stored, applied, acknowledged.
bench-hl7: $(BUILD)/bench/hl7
$(BUILD)/bench/hl7: bench/hl7.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# What the outbox costs a write (with against without), and claim + acknowledge.
bench-outbox: $(BUILD)/bench/outbox
$(BUILD)/bench/outbox: bench/outbox.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# A clinical population as NDJSON, and the import and search latencies over it (bench/population).
bench-population: $(BUILD)/bench/gen-population $(BUILD)/bench/population $(BUILD)/concerto
$(BUILD)/bench/gen-population: bench/gen_population.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<
$(BUILD)/bench/population: bench/population.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The coordinators' web app over the 1,000-patient demo population, in headless Chromium: the
# first screen, the other screens and the worklist's actions against their targets
# (bench/web/web.mjs, docs/performance.md "Web app"); always the release build.
bench-web:
	$(MAKE) --no-print-directory MODE=release BUILD=build build/concerto
	CONCERTO_BIN=build/concerto node bench/web/web.mjs

# libFuzzer harnesses (clang): tests/fuzz/NAME.c -> build/fuzz/NAME, corpus tests/fuzz/corpus/NAME
fuzz: $(FUZZ_BIN)

build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

build/fuzz/obj/base/calendar.o: build/gen/us_federal_holidays.h
build/fuzz/obj/care/builtin.o: build/gen/builtin_protocols.h
build/fuzz/obj/http/web.o: build/gen/web_assets.h

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS)

layers:
	@tools/check-layers

check:
	@tools/check

run:
	@tools/run-demo

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/cli/main.d $(UNIT_BIN:=.d) $(FUZZ_LIB_OBJ:.o=.d) \
         $(FHIRPATH_SUITE).d
