# tapeless — build, test and lint. `make help` lists the targets.
#
# S3 tests run against two real MinIO servers (see README.md, "MinIO for
# tests"): `make test` and `make bench` start them, run, and stop them again.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
GOFMT    ?= $(shell $(GO) env GOROOT)/bin/gofmt
TOOLS    := $(CURDIR)/.tools/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

# Extra flags for go test, e.g. `make test TESTFLAGS='-v -run S3'`.
TESTFLAGS  ?=
TESTTIMEOUT ?= 20m
# Benchmarks: which, how long each, and the packages.
BENCH      ?= .
BENCHTIME  ?= 2s
BENCHPKGS  ?= ./...
# Size in MiB of the restore-from-vault benchmark's point (RESTOREMIB=1024
# for the 1 GiB figure); it prints restore and raw S3 GET throughput of the
# same run, their ratio, and restore's peak RSS.
RESTOREMIB ?= 256

# staticcheck, pinned; installed outside the module so go.mod stays clean.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(TOOLS)/staticcheck

# Install locations (GNU conventions); DESTDIR stages a package root.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
MANDIR  := $(PREFIX)/share/man/man1
SHAREDIR := $(PREFIX)/share

.PHONY: help build install uninstall cross test browser test-offline bench lint fmt vet staticcheck minio-up minio-down minio-env run clean tools-clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

build: ## build bin/tapeless, version from git describe
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tapeless ./cmd/tapeless

# The man pages and completions come from the built binary's own command
# tree (cobra), so they always match its --help.
install: build ## install the binary, man pages and shell completions (PREFIX=/usr/local DESTDIR=)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) \
		$(DESTDIR)$(SHAREDIR)/bash-completion/completions \
		$(DESTDIR)$(SHAREDIR)/zsh/site-functions \
		$(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d
	install -m 0755 bin/tapeless $(DESTDIR)$(BINDIR)/tapeless
	bin/tapeless man --quiet $(DESTDIR)$(MANDIR)
	bin/tapeless completion bash > $(DESTDIR)$(SHAREDIR)/bash-completion/completions/tapeless
	bin/tapeless completion zsh > $(DESTDIR)$(SHAREDIR)/zsh/site-functions/_tapeless
	bin/tapeless completion fish > $(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d/tapeless.fish
	@echo "installed $$(bin/tapeless version) under $(DESTDIR)$(PREFIX)"

uninstall: ## remove what install put under PREFIX (and DESTDIR)
	rm -f $(DESTDIR)$(BINDIR)/tapeless $(DESTDIR)$(MANDIR)/tapeless.1 $(DESTDIR)$(MANDIR)/tapeless-*.1 \
		$(DESTDIR)$(SHAREDIR)/bash-completion/completions/tapeless \
		$(DESTDIR)$(SHAREDIR)/zsh/site-functions/_tapeless \
		$(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d/tapeless.fish

# Builds for the other Unix systems tapeless supports; only Linux runs the
# tests. Windows is refused at build time with a message saying why.
cross: ## build for darwin and freebsd (amd64 and arm64) to check portability
	for os in darwin freebsd; do for arch in amd64 arm64; do \
		echo "GOOS=$$os GOARCH=$$arch go build ./..."; \
		GOOS=$$os GOARCH=$$arch $(GO) build ./... || exit 1; \
	done; done

test: browser ## start MinIO, run every test (S3 included), stop MinIO
	scripts/with-minio.sh $(GO) test -count=1 -timeout $(TESTTIMEOUT) $(TESTFLAGS) ./...

# The status page test opens the page in headless Chromium (Debian's
# chromium package). Installing it is best effort: without apt or root the
# test skips with a message, which must not fail the run.
browser:
	@command -v chromium >/dev/null || (sudo -n apt-get install -y chromium || apt-get install -y chromium) >/dev/null 2>&1 || echo "make: chromium not installed; the status page test will skip"

test-offline: ## run the tests without MinIO (S3 tests skip, except when CI=true)
	$(GO) test -count=1 -timeout $(TESTTIMEOUT) $(TESTFLAGS) ./...

bench: ## start MinIO, run the benchmarks (BENCH=regexp BENCHTIME=2s RESTOREMIB=256), stop MinIO
	TAPELESS_BENCH_RESTORE_MIB=$(RESTOREMIB) scripts/with-minio.sh $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem -timeout 60m $(BENCHPKGS)

lint: fmt vet staticcheck ## gofmt, go vet and staticcheck must all be clean

fmt:
	@out="$$($(GOFMT) -l $$($(GO) list -f '{{.Dir}}' ./...))"; \
	if [[ -n "$$out" ]]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The binary's embedded module version decides whether to (re)install, so a
# version bump here is picked up and a binary already built is reused.
staticcheck:
	@info="$$($(GO) version -m $(STATICCHECK) 2>/dev/null || true)"; \
	if ! grep -q "mod[[:space:]]*honnef.co/go/tools[[:space:]]*$(STATICCHECK_VERSION)[[:space:]]" <<<"$$info"; then \
		echo "installing staticcheck $(STATICCHECK_VERSION) into .tools/bin"; \
		mkdir -p $(TOOLS); \
		cd /tmp && GOBIN=$(TOOLS) GOFLAGS=-buildvcs=false $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi
	$(STATICCHECK) ./...

minio-up: ## start the two test MinIO servers (Docker, or the pinned build)
	scripts/minio.sh up
	@echo 'For go test by hand: eval "$$(scripts/minio.sh env)"'

minio-down: ## stop the MinIO servers that minio-up started
	scripts/minio.sh down

minio-env: ## print the TAPELESS_TEST_S3_* exports
	@scripts/minio.sh env

# The main job on the embedded default (file:// GRS vault in a temporary
# folder): vault, credentials, registration, backup, offload, restore from
# the vault compared with the source, points. See scripts/demo.sh.
run: build ## run the main job end to end on a temporary file:// GRS vault
	scripts/demo.sh bin/tapeless

clean: ## remove build output (keeps .tools, the MinIO build is slow)
	rm -rf bin/ tapeless *.test *.out

tools-clean: ## remove .tools (MinIO and staticcheck are rebuilt on next use)
	rm -rf .tools/
