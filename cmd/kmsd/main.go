// Command kmsd is the key service: an AWS-KMS-compatible HTTP API whose keys
// live in a PKCS#11 token and whose metadata lives in SQLite.
//
// With no configuration it runs against SoftHSM2 using ./softhsm.conf and the
// token labelled "kms", listens on 127.0.0.1:8080 and writes the bootstrap
// admin credentials to ./var/admin-credentials. scripts/run sets all of that
// up. See README.md for the configuration reference.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"hsmkms/hsm"
	"hsmkms/httpapi"
	"hsmkms/kms"
	"hsmkms/kms/sqlstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsd:", err)
		os.Exit(1)
	}
}

// run is kmsd: it parses args, serves until ctx is done, then shuts down in
// the reverse order of start-up. stdout gets the few lines meant for the
// person starting the server; stderr gets the structured log.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kmsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (default $KMSD_CONFIG; none: built-in defaults)")
	listen := fs.String("listen", "", "listen `address` host:port, overriding config and $KMSD_LISTEN (port 0: any free port)")
	addrFile := fs.String("addr-file", "", "when ready to serve, write the bound host:port to this `file`")
	checkOnly := fs.Bool("check-config", false, "load and validate the configuration, log in to the token with the PIN, then exit")
	resetAdmin := fs.Bool("reset-admin-key", false, "replace the bootstrap admin's access keys by a new one written to credentials_file, then exit (when its secret is lost)")
	initToken := fs.Bool("init-token", false, "initialise the configured token on a free slot with the configured PIN and a random SO PIN that is not kept, then exit (SoftHSM2 development tokens; scripts/run uses it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (the PIN is never a flag: use $KMSD_HSM_PIN or hsm.pin_file)", fs.Args())
	}
	if *configPath == "" {
		*configPath = os.Getenv("KMSD_CONFIG")
	}
	cfg, err := loadConfig(loadOptions{path: *configPath, listen: *listen})
	if err != nil {
		return err
	}
	// The PIN is in cfg now; the variable would otherwise stay readable in
	// /proc/<pid>/environ and be inherited by every child process.
	if err := os.Unsetenv(cfg.HSM.PINEnv); err != nil {
		return fmt.Errorf("unset %s: %w", cfg.HSM.PINEnv, err)
	}
	log := newLogger(cfg.Log, stderr)
	if n := countTrue(*checkOnly, *initToken, *resetAdmin); n > 1 {
		return errors.New("-check-config, -init-token and -reset-admin-key: choose one")
	}
	if conf, set, err := softHSMConf(os.Getenv, os.Setenv); err != nil {
		return fmt.Errorf("SOFTHSM2_CONF: %w", err)
	} else if set {
		log.Info("using the repository's SoftHSM2 configuration", "softhsm2_conf", conf)
	}
	if *initToken {
		return initializeToken(ctx, cfg, stdout)
	}
	if *checkOnly {
		// The PIN is part of the configuration: a wrong one would only
		// show at the restart this check is meant to make safe.
		if err := hsm.CheckLogin(ctx, cfg.HSM.Module, cfg.HSM.TokenLabel, cfg.PIN()); err != nil {
			return fmt.Errorf("HSM login (module %s, token %q): %w", cfg.HSM.Module, cfg.HSM.TokenLabel, err)
		}
		fmt.Fprintf(stdout, "kmsd: configuration OK (token %q accepted the PIN)\n", cfg.HSM.TokenLabel)
		return nil
	}
	log.Info("starting kmsd", "config", cfg, "config_file", *configPath)
	for _, p := range []string{cfg.Database, cfg.CredentialsFile} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
	}
	if err := checkWritableDir(filepath.Dir(cfg.CredentialsFile)); err != nil {
		// Checked before Bootstrap: a secret created but not written
		// down would be lost.
		return fmt.Errorf("credentials_file: %w", err)
	}

	// Listening comes first (a port in use fails before the HSM opens),
	// except for -reset-admin-key, which serves nothing and may run beside
	// a kmsd that holds the port.
	defer log.Info("stopped") // deferred first, so logged after everything closed
	var ln net.Listener
	endpoint := "http://" + cfg.Listen
	if !*resetAdmin {
		l, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return err
		}
		ln = l
		defer ln.Close()
		endpoint = endpointURL(ln.Addr())
	}
	if cfg.HTTP.TLS.enabled() {
		tlsCfg, err := loadServerTLS(cfg.HTTP.TLS) // tls.go
		if err != nil {
			return fmt.Errorf("http.tls: %w", err)
		}
		if ln != nil {
			ln = tls.NewListener(ln, tlsCfg)
		}
		endpoint = "https" + strings.TrimPrefix(endpoint, "http")
	}

	dev, err := hsm.Open(ctx, hsm.Config{
		ModulePath: cfg.HSM.Module,
		TokenLabel: cfg.HSM.TokenLabel,
		PIN:        cfg.PIN(),
		PoolSize:   cfg.HSM.PoolSize,
		PoolWait:   time.Duration(cfg.HSM.PoolWait),
		Logger:     log.With("component", "hsm"),
	})
	if err != nil {
		return fmt.Errorf("open HSM (module %s, token %q; scripts/run initialises a SoftHSM2 token under ./var): %w",
			cfg.HSM.Module, cfg.HSM.TokenLabel, err)
	}
	defer closeLogged(log, "HSM", dev.Close)

	store, err := sqlstore.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer closeLogged(log, "database", store.Close)

	// -reset-admin-key neither serves nor audits: the audit file stays
	// with the kmsd that may be running beside it.
	var obs *observability
	var device hsm.Device = dev
	if !*resetAdmin {
		if obs, err = openObservability(ctx, cfg, log, store); err != nil { // audit trail, quotas, metrics (observe.go)
			return err
		}
		defer closeLogged(log, "audit trail", obs.close) // after the workers stop, before the store closes
		device = obs.device(dev)                         // timed per mechanism for /metrics
	}

	svc, err := kms.New(kms.Config{
		Region:          cfg.Region,
		Device:          device,
		Store:           store,
		Logger:          log.With("component", "kms"),
		Now:             clockFrom(ctx), // time.Now except in tests (clock.go)
		InvocationBound: cfg.Advanced.InvocationBound,
		ReserveBlock:    cfg.Advanced.ReserveBlock,
	})
	if err != nil {
		return err
	}
	if *resetAdmin {
		boot, err := svc.ResetBootstrapAdminKey(ctx)
		if err != nil {
			return fmt.Errorf("reset the admin access key: %w", err)
		}
		return reportBootstrap(log, stdout, cfg, boot, endpoint)
	}
	report, err := svc.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("start-up reconciliation: %w", err)
	}
	logReconcile(log, report)
	// One durable write warms every key's invocation counter, and the
	// authorization cache is filled, so the first request for each key after
	// a start waits for neither. In the background: requests that come
	// first simply warm their keys themselves.
	go func() {
		start := time.Now()
		if n, err := svc.Prewarm(ctx); err != nil {
			log.Warn("warming keys failed; keys warm up on first use", "err", err)
		} else {
			log.Info("keys warmed", "key_versions", n, "duration", time.Since(start))
		}
	}()

	boot, err := svc.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := reportBootstrap(log, stdout, cfg, boot, endpoint); err != nil {
		return err
	}

	if err := obs.start(ctx, svc); err != nil {
		return err
	}

	workerCtx, stopWorker := context.WithCancel(ctx)
	var worker sync.WaitGroup
	worker.Go(func() { obs.runMaintenance(workerCtx, clockFrom(ctx)) }) // audit digests, retention
	worker.Go(func() { svc.RunDeletionWorker(workerCtx, time.Duration(cfg.DeletionCheckInterval)) })
	worker.Go(func() { svc.RunRotationScheduler(workerCtx, time.Duration(cfg.RotationCheckInterval)) })
	defer func() { stopWorker(); worker.Wait() }() // before the store and HSM close

	// Requests keep their context through the shutdown grace period; it is
	// cancelled only once the grace period is over.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler: httpapi.NewHandler(httpapi.Config{
			Service:      svc,
			Logger:       log.With("component", "http"),
			MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
			Ready:        obs.ready(svc),

			Audit:           obs.audit,
			AuditVerifier:   obs.verifier(),
			Quotas:          obs.quotas,
			Metrics:         obs.metrics,
			SeparateMetrics: cfg.Metrics.Listen != "",
		}),
		ReadHeaderTimeout: time.Duration(cfg.HTTP.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.HTTP.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.HTTP.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.HTTP.IdleTimeout),
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if addr, err := obs.serveHealth(svc); err != nil {
		_ = srv.Close()
		return err
	} else if addr != "" {
		log.Info("serving /metrics, /healthz and /readyz", "addr", addr)
	}

	if *addrFile != "" {
		if err := writeFileAtomic(*addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			_ = srv.Close()
			return fmt.Errorf("addr-file: %w", err)
		}
		defer os.Remove(*addrFile)
	}
	log.Info("serving", "addr", ln.Addr().String(), "endpoint", endpoint, "region", cfg.Region)

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.HTTP.ShutdownTimeout.String())
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.HTTP.ShutdownTimeout))
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("graceful shutdown incomplete; closing connections", "err", err)
			_ = srv.Close()
		}
		cancel()
		serveErr = <-served
	}
	cancelBase()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// newLogger builds the process logger; cfg has been validated.
func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func closeLogged(log *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		log.Error("close failed", "what", what, "err", err)
	}
}

// logReconcile logs what the start-up reconciler did: counts and ids only.
func logReconcile(log *slog.Logger, r kms.ReconcileReport) {
	log.Info("reconciled HSM and database",
		"completed_creates", r.CompletedCreates,
		"abandoned_creates", r.AbandonedCreates,
		"rescheduled_rotations", r.RescheduledRotations,
		"completed_destroys", r.CompletedDestroys,
		"missing_objects", len(r.MissingObjects),
		"orphan_objects", len(r.OrphanObjects))
	// Reconcile itself logs which versions and objects (once, not here too).
}

// endpointURL is the URL clients on this machine use to reach addr.
func endpointURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// initializeToken makes the configured token on a free slot of the module,
// with the configured user PIN. The SO PIN is random and dropped: kmsd never
// needs it, and a development token is cheaper to make again than an SO
// PIN is to keep safe. Nothing is passed on a command line (softhsm2-util
// takes PINs only as arguments or from a terminal, and arguments show in
// ps).
func initializeToken(ctx context.Context, cfg Config, stdout io.Writer) error {
	so := make([]byte, 16)
	if _, err := rand.Read(so); err != nil {
		return err
	}
	if err := hsm.InitToken(ctx, cfg.HSM.Module, cfg.HSM.TokenLabel, hex.EncodeToString(so), cfg.PIN()); err != nil {
		return fmt.Errorf("initialise token %q (module %s): %w", cfg.HSM.TokenLabel, cfg.HSM.Module, err)
	}
	fmt.Fprintf(stdout, "kmsd: token %q initialised with the configured PIN (its SO PIN was random and is not kept)\n", cfg.HSM.TokenLabel)
	return nil
}

// countTrue counts the flags set.
func countTrue(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}
