// Command server is the reference server: the KMS supplier API for SHE key provisioning on one
// listener, its state in a data directory.
//
//	server [-listen 127.0.0.1:8080] [-data ./data] [-db postgres://…] [-registry FILE] [-auth none|bearer|mtls]
//	       [-tls-cert FILE -tls-key FILE [-tls-client-ca FILE [-tls-client-crl FILE]]] [-admin-token TOKEN [-console=false]]
//	       [-read-header-timeout D] [-read-timeout D] [-write-timeout D] [-idle-timeout D]
//	       [-request-timeout D] [-max-conns N] [-registry-refresh D] [-pprof 127.0.0.1:PORT]
//	       [-log-level debug|info|warn|error]
//
// Every flag can also come from the environment: SHEKIT_ and its name in capitals with - as _
// (SHEKIT_ADMIN_TOKEN, SHEKIT_DB, …); the command line wins.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	listen, data, db, registry, auth, tlsCert, tlsKey, tlsClientCA, tlsClientCRL, adminToken string
	clmLicense, clmKeys, clmCAKeys, pprof                                                    string
	logLevel                                                                                 slog.Level
	limits                                                                                   connLimits
	registryRefresh                                                                          time.Duration
	console                                                                                  bool
}

// isLoopback reports whether a listen address can only be reached from this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (o *options) tlsConfig(auth kms.Auth) (*tls.Config, error) {
	if o.tlsCert == "" && o.tlsKey == "" {
		if auth == kms.AuthMTLS {
			return nil, errors.New("-auth mtls needs -tls-cert, -tls-key and -tls-client-ca")
		}
		return nil, nil
	}
	clientCA := ""
	if auth == kms.AuthMTLS {
		clientCA = o.tlsClientCA
		if clientCA == "" {
			return nil, errors.New("-auth mtls needs -tls-client-ca")
		}
	}
	if o.tlsClientCRL != "" && auth != kms.AuthMTLS {
		return nil, errors.New("-tls-client-crl is for -auth mtls")
	}
	return serverTLS(o.tlsCert, o.tlsKey, clientCA, o.tlsClientCRL)
}

// minAdminToken is the shortest admin token accepted, and minTokenSymbols the fewest distinct
// characters it must have: a token of random characters, such as openssl rand -hex 32 makes.
const minAdminToken, minTokenSymbols = 32, 8

// checkAdminToken refuses an admin token that is too short or too repetitive to be random.
func checkAdminToken(token string) error {
	if token == "" {
		return nil
	}
	symbols := map[rune]bool{}
	for _, r := range token {
		symbols[r] = true
	}
	if len(token) < minAdminToken || len(symbols) < minTokenSymbols {
		return fmt.Errorf("-admin-token: want at least %d random characters (%d distinct at least; e.g. openssl rand -hex 32), got %d characters",
			minAdminToken, minTokenSymbols, len(token))
	}
	return nil
}

// flagsFromEnv sets every flag not given on the command line from its environment variable, if
// set: SHEKIT_ and the flag's name in capitals with - as _ (SHEKIT_ADMIN_TOKEN for -admin-token).
func flagsFromEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SHEKIT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(name); ok && !given[f.Name] && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", name, serr)
			}
		}
	})
	return err
}

// register defines the command's flags on fs, storing into o.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.data, "data", "./data", "data directory (key-encryption key, database)")
	fs.StringVar(&o.db, "db", "", "database: empty for SQLite in the data directory, or a postgres:// URL (replicas share it)")
	fs.StringVar(&o.registry, "registry", "", "registry of suppliers and ECU types, .json or .yaml (default: the demo registry)")
	fs.StringVar(&o.auth, "auth", "none", "supplier authentication: none (loopback only), bearer or mtls")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate (PEM): serve HTTPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "CA certificate (PEM) of the clients, for -auth mtls")
	fs.StringVar(&o.tlsClientCRL, "tls-client-crl", "", "CRL (PEM or DER) of -tls-client-ca: revoked client certificates are refused (read again when the file changes)")
	fs.StringVar(&o.clmLicense, "clm-license", "", "CLM license key, the Basic password of user secureware-clm (default: the demo key demo-license, loopback only)")
	fs.StringVar(&o.clmKeys, "clm-key", "rsa", "CLM client key pairs: rsa (RSA-2048) or ecdsa (P-256)")
	fs.StringVar(&o.clmCAKeys, "clm-ca-key", "", "the CLM CA's key pair, made on the first start: rsa or ecdsa (default: -clm-key)")
	fs.DurationVar(&o.limits.readHeader, "read-header-timeout", 10*time.Second, "time a client has to send a request's headers")
	fs.DurationVar(&o.limits.read, "read-timeout", 30*time.Second, "time a client has to send a whole request, body included")
	fs.DurationVar(&o.limits.write, "write-timeout", 30*time.Second, "time from a request's headers to the end of its answer")
	fs.DurationVar(&o.limits.idle, "idle-timeout", 60*time.Second, "time a keep-alive connection may wait for its next request")
	fs.DurationVar(&o.limits.request, "request-timeout", 5*time.Second, "time a request may take, store calls included; past it the API's internal error answers")
	fs.IntVar(&o.limits.maxConns, "max-conns", 4096, "connections held open at most; at the limit a new one closes the one idle longest")
	fs.DurationVar(&o.registryRefresh, "registry-refresh", reference.DefaultRegistryRefresh, "how often the stored registry is read for changes another replica's admin API made")
	fs.StringVar(&o.adminToken, "admin-token", "", "bearer token of the admin API under /admin (empty: admin API disabled)")
	fs.BoolVar(&o.console, "console", true, "serve the web console at /console/, signed into with -admin-token (none without one)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "least level logged: debug, info (a line per request), warn or error")
	fs.StringVar(&o.pprof, "pprof", "", "loopback address to serve net/http/pprof on, a listener of its own (empty: off)")
}

// check refuses options that do not go together or would expose the server, and returns the
// authentication mode and the TLS configuration (nil: plain HTTP).
func (o *options) check() (kms.Auth, *tls.Config, error) {
	auth, err := kms.ParseAuth(o.auth)
	if err != nil {
		return "", nil, err
	}
	switch {
	case o.clmLicense == "" && !isLoopback(o.listen):
		return "", nil, errors.New("the demo CLM license key is only allowed on a loopback address: set -clm-license")
	case o.clmKeys != "rsa" && o.clmKeys != "ecdsa":
		return "", nil, fmt.Errorf("-clm-key %q: want rsa or ecdsa", o.clmKeys)
	case o.clmCAKeys != "" && o.clmCAKeys != "rsa" && o.clmCAKeys != "ecdsa":
		return "", nil, fmt.Errorf("-clm-ca-key %q: want rsa or ecdsa", o.clmCAKeys)
	case auth == kms.AuthNone && !isLoopback(o.listen):
		return "", nil, fmt.Errorf("-auth none is only allowed on a loopback address, not %s", o.listen)
	case o.registryRefresh <= 0:
		return "", nil, fmt.Errorf("-registry-refresh %v: want a positive duration", o.registryRefresh)
	case o.pprof != "" && !isLoopback(o.pprof):
		return "", nil, fmt.Errorf("-pprof %s: want a loopback address (a profile shows the server's memory)", o.pprof)
	}
	tlsCfg, err := o.tlsConfig(auth)
	if err != nil {
		return "", nil, err
	}
	if auth == kms.AuthBearer && tlsCfg == nil && !isLoopback(o.listen) {
		return "", nil, fmt.Errorf("-auth bearer sends tokens in the clear without TLS: on %s set -tls-cert and -tls-key", o.listen)
	}
	if err := checkAdminToken(o.adminToken); err != nil {
		return "", nil, err
	}
	return auth, tlsCfg, o.limits.check()
}

// run serves until ctx ends and returns the exit status: 2 for bad flags, 1 for a failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(err error) int { fmt.Fprintf(stderr, "server: %v\n", err); return 2 }
	if err := flagsFromEnv(fs, os.LookupEnv); err != nil {
		return usage(err)
	}
	auth, tlsCfg, err := o.check()
	if err != nil {
		return usage(err)
	}
	var reg *kms.Registry
	if o.registry != "" {
		if reg, err = kms.LoadRegistry(o.registry); err != nil {
			return usage(err)
		}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	ref, err := reference.New(ctx, reference.Config{DataDir: o.data, DB: o.db, Registry: reg, Auth: auth,
		AdminToken: o.adminToken, Console: o.console, RequestTimeout: o.limits.request, RegistryRefresh: o.registryRefresh,
		CLMLicense: o.clmLicense, CLMKeys: o.clmKeys, CLMCAKeys: o.clmCAKeys, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
	defer ref.Close()
	return o.serve(ctx, ref.Handler(), tlsCfg, stdout, stderr)
}

// serve listens and serves h until ctx ends, then shuts down; it returns the exit status.
func (o *options) serve(ctx context.Context, h http.Handler, tlsCfg *tls.Config, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
	srv, ln := o.limits.server(h, ln, stderr)
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	fmt.Fprintf(stdout, "listening on %s://%s (auth %s, data %s)\n", scheme, ln.Addr(), o.auth, o.data)
	if o.pprof != "" {
		p, err := startPprof(o.pprof, stderr)
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "server: %v\n", err)
			return 1
		}
		defer p.close()
		fmt.Fprintf(stdout, "profiles on %s\n", p.url())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "server: shutdown: %v\n", err)
		return 1
	}
	return 0
}
