# The SHE provisioning kit. Every target needs only Go (and make).

GO        ?= go
REPORT    ?= report
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
# go test's per-binary limit: the whole-suite tests take minutes on a loaded machine.
TESTTIMEOUT ?= 45m
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
KIT_PKG    = github.com/shekit/shekit/conformance_test

# Fuzz targets as package:Target.
FUZZ_TARGETS = \
	./simulator/she:FuzzOpenM1M3 \
	./simulator/she:FuzzLoadKey \
	./simulator/keystore:FuzzDecode \
	./simulator/ecu:FuzzUDSRequest \
	./server/kms:FuzzProvisioningRequest \
	./server/clm:FuzzCLMRequest \
	./vcan:FuzzParseLogLine \
	./vcan/isotp:FuzzISOTPReassembly \
	./vcan/doip:FuzzParse \
	./vcan/doip/entity:FuzzEntityInput \
	./vectors:FuzzParse

.PHONY: run conformance test test-host test-vm bench fuzz lint generate

## run: the main job on the embedded default (the reference server in-process, simulated ECUs on
## the in-memory bus, provisioned through the station, as conformance/reference.yaml declares):
## every conformance test, every target and the self-tests, a verdict line per target, reports in
## $(REPORT)/. The entry point is the vendor binary's (TestConformance).
## CONF_* variables point the suites elsewhere (README, "Conformance against your own server or ECU").
run:
	CONF_REPORT_DIR=$${CONF_REPORT_DIR:-$(CURDIR)/$(REPORT)} $(GO) test -count=1 -v \
		-ldflags "-X $(KIT_PKG).version=$(VERSION) -X $(KIT_PKG).commit=$(COMMIT)" -run '^TestConformance$$' ./conformance -args -ginkgo.succinct

## conformance: bin/shekit-conformance, the conformance suites as one static binary for vendors
## (no Go toolchain, no source tree: contracts, vectors and the declaration template embedded);
## README, "Certify your KMS or CLM". Test binaries carry no VCS stamp: the version is -X's.
conformance:
	CGO_ENABLED=0 $(GO) test -c -trimpath -ldflags "-X $(KIT_PKG).version=$(VERSION) -X $(KIT_PKG).commit=$(COMMIT)" \
		-o bin/shekit-conformance ./conformance

## test: every unit test and every Ginkgo suite with the race detector, then the tests that need
## a real kernel's CAN, inside a throwaway VM (test-vm).
test: test-host test-vm

## test-host: every unit test and every Ginkgo suite, with the race detector, on this machine; then
## the teeth tables (a whole suite run per row), the ecu and e2e suites per built-in diagnostic profile
## and the vendor binary's tests, which skip under -race,
## without it. The DoIP interop test needs Debian's python3-scapy and python3-cryptography and fails
## without them here (vcan/vm-test-deps.sh installs them, as root, with the VM tests' other peers);
## the web console's browser tests need Debian's chromium and fail without it here (the script installs it).
test-host:
	@$(CURDIR)/vcan/vm-test-deps.sh
	SHEKIT_REQUIRE_SCAPY=1 SHEKIT_REQUIRE_CHROMIUM=1 $(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./...
	$(GO) test -count=1 -timeout $(TESTTIMEOUT) -run '^(TestTeethTable|TestCLMTeeth|TestSuitesCatchFaults|TestVendorBinary|TestVendorBinaryCertifiesReference|TestKMSCertificationOverMutualTLS|TestECUTeeth|TestSuitesDriveEachBuiltinDiagProfile)$$' ./conformance

## test-vm: the tests that need vcan0, vcan1 and CAN_ISOTP, inside a throwaway VM whose kernel has
## them (vcan/run-in-vm.sh; Linux x86-64; as root it installs QEMU, can-utils and scapy). There no
## test may skip for want of vcan0, and a VM that cannot start fails the run.
test-vm:
	@$(CURDIR)/vcan/vm-test-deps.sh
	SHEKIT_REQUIRE_VCAN=1 $(GO) test -count=1 -timeout $(TESTTIMEOUT) -exec $(CURDIR)/vcan/run-in-vm.sh ./vcan/...
	SHEKIT_REQUIRE_VCAN=1 $(GO) test -count=1 -timeout $(TESTTIMEOUT) -exec $(CURDIR)/vcan/run-in-vm.sh -run 'VCAN0' ./simulator/ecu ./conformance

## bench: every benchmark, with allocations.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

## fuzz: each fuzz target for FUZZTIME.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

## lint: gofmt and go vet.
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## generate: regenerate the stringer files.
generate:
	$(GO) generate ./...
