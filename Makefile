# The SHE provisioning kit. Every target needs only Go (and make).

GO        ?= go
REPORT    ?= report
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

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
	./vectors:FuzzParse

.PHONY: run test test-host test-vm bench fuzz lint generate

## run: the main job on the embedded default (the reference server in-process, simulated ECUs on
## the in-memory bus, provisioned through the station): every conformance suite, reports in $(REPORT)/.
## CONF_* variables point the suites elsewhere (README, "Conformance against your own server or ECU").
run:
	CONF_REPORT_DIR=$${CONF_REPORT_DIR:-$(CURDIR)/$(REPORT)} $(GO) test -count=1 -v -run '^TestConformance$$' ./conformance -args -ginkgo.succinct

## test: every unit test and every Ginkgo suite with the race detector, then the tests that need
## a real kernel's CAN, inside a throwaway VM (test-vm).
test: test-host test-vm

## test-host: every unit test and every Ginkgo suite, with the race detector, on this machine; then
## the teeth tables (a whole suite run per row), which skip under -race, without it.
test-host:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '^(TestTeethTable|TestCLMTeeth|TestSuitesCatchFaults|TestECUTeeth)$$' ./conformance

## test-vm: the tests that need vcan0, vcan1 and CAN_ISOTP, inside a throwaway VM whose kernel has
## them (vcan/run-in-vm.sh; Linux x86-64; as root it installs QEMU, can-utils and scapy). There no
## test may skip for want of vcan0, and a VM that cannot start fails the run.
test-vm:
	@$(CURDIR)/vcan/vm-test-deps.sh
	SHEKIT_REQUIRE_VCAN=1 $(GO) test -count=1 -exec $(CURDIR)/vcan/run-in-vm.sh ./vcan/...
	SHEKIT_REQUIRE_VCAN=1 $(GO) test -count=1 -exec $(CURDIR)/vcan/run-in-vm.sh -run 'VCAN0' ./simulator/ecu ./conformance

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
