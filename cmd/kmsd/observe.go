package main

// Wiring of the audit trail, request quotas, metrics and health endpoints.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"hsmkms/hsm"
	"hsmkms/kms"
	"hsmkms/kms/audit"
	"hsmkms/kms/metrics"
	"hsmkms/kms/quota"
	"hsmkms/kms/sqlstore"
)

// observability is what kmsd adds around the service: its parts live from
// start-up to shutdown.
type observability struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	audit   *audit.Log
	quotas  *quota.Limiter
	signer  *kms.AuditSigner
	store   *sqlstore.Store

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	healthSrv *http.Server
}

// openObservability opens the audit file and builds the metrics and quotas.
func openObservability(ctx context.Context, cfg Config, log *slog.Logger, store *sqlstore.Store) (*observability, error) {
	o := &observability{cfg: cfg, log: log.With("component", "audit"), metrics: metrics.New(), store: store}
	if !cfg.quotasDisabled() {
		q, err := quota.New(cfg.quotaConfig(), nil)
		if err != nil {
			return nil, err
		}
		o.quotas = q
	}
	a, err := audit.Open(ctx, cfg.auditDatabase(), audit.Options{Mode: cfg.auditMode(), OnCommit: o.metrics.AuditCommitted, Log: o.log,
		OnLost: func(n int) {
			for range n {
				o.metrics.AuditFailed()
			}
		},
		Anchor: newSettingsAnchor(store, cfg.auditDatabase()), Reanchor: cfg.Audit.Reanchor})
	if err != nil {
		return nil, err
	}
	o.audit = a
	if a != nil {
		o.metrics.RegisterAuditQueue(a.QueueDepth)
	}
	return o, nil
}

// settingsAnchor keeps the audit digest anchor (audit.Anchor) of one audit
// file in the metadata database's settings: "SEQ:HEXHASH" under a name
// that includes the file's path, so that pointing kmsd at another audit
// file (a configuration change, as scripts/bench-audit does per mode)
// starts that file's own anchor, while a file replaced at the same path is
// caught.
type settingsAnchor struct {
	store *sqlstore.Store
	name  string
}

const auditAnchorSetting = "audit_digest_anchor"

func newSettingsAnchor(store *sqlstore.Store, auditPath string) settingsAnchor {
	if abs, err := filepath.Abs(auditPath); err == nil {
		auditPath = abs
	}
	return settingsAnchor{store: store, name: auditAnchorSetting + ":" + filepath.Clean(auditPath)}
}

func (a settingsAnchor) Load(ctx context.Context) (int64, []byte, error) {
	v, err := a.store.GetSetting(ctx, a.name)
	if errors.Is(err, kms.ErrStoreNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	seqText, hashHex, ok := strings.Cut(v, ":")
	seq, serr := strconv.ParseInt(seqText, 10, 64)
	hash, herr := hex.DecodeString(hashHex)
	if !ok || serr != nil || herr != nil || seq <= 0 {
		return 0, nil, fmt.Errorf("malformed %s setting %q", a.name, v)
	}
	return seq, hash, nil
}

func (a settingsAnchor) Save(ctx context.Context, seq int64, hash []byte) error {
	return a.store.PutSetting(ctx, a.name, strconv.FormatInt(seq, 10)+":"+hex.EncodeToString(hash))
}

// device instruments the HSM.
func (o *observability) device(dev hsm.Device) hsm.Device {
	o.metrics.RegisterHSMStats(dev)
	return o.metrics.WrapDevice(dev)
}

// start prepares the digest signer (creating its key in the HSM on first
// start) and registers the service's gauges.
func (o *observability) start(ctx context.Context, svc *kms.Service) error {
	o.metrics.RegisterKeyCounts(svc.KeyCountsByState)
	if o.audit == nil {
		return nil
	}
	signer, err := svc.AuditSigner(ctx)
	if err != nil {
		return fmt.Errorf("audit digest signing key: %w", err)
	}
	o.signer = signer
	return nil
}

// runMaintenance writes digests and prunes until ctx is done.
func (o *observability) runMaintenance(ctx context.Context, now func() time.Time) {
	if o.audit == nil || o.signer == nil {
		return
	}
	o.audit.RunMaintenance(ctx, o.signer, o.cfg.digestInterval(), time.Duration(o.cfg.Audit.Retention), now, o.log)
}

// verifier checks digest signatures with the signing key's public key.
func (o *observability) verifier() audit.SignatureVerifier {
	if o.signer == nil {
		return nil
	}
	return o.signer.Verify
}

// readyCacheFor bounds how often a probe storm reaches the HSM and writes
// to the databases.
const readyCacheFor = time.Second

// ready is /readyz: the HSM answers a cheap call, the metadata database
// takes a write and has every migration, the audit file takes a write.
func (o *observability) ready(svc *kms.Service) func(context.Context) error {
	return func(ctx context.Context) error {
		o.readyMu.Lock()
		defer o.readyMu.Unlock()
		if time.Since(o.readyAt) < readyCacheFor {
			return o.readyErr
		}
		// Not the probe's context: the result is cached and shared by both
		// listeners, so a client that hangs up mid-check (a cancelled
		// context) must not mark the node unready for everyone.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyCheckTimeout)
		defer cancel()
		err := svc.Health(ctx)
		if err == nil {
			err = svc.ProbeWritable(ctx)
		}
		if err == nil {
			err = o.store.CheckMigrations(ctx)
		}
		if err == nil {
			err = o.audit.Ping(ctx)
		}
		if err != nil {
			err = kms.Internal(err) // the message stays generic; the cause is logged
		}
		o.readyAt, o.readyErr = time.Now(), err
		return err
	}
}

// readyCheckTimeout bounds one readiness check.
const readyCheckTimeout = 2 * time.Second

// serveHealth starts the separate /metrics, /healthz, /readyz listener when
// metrics.listen is set.
func (o *observability) serveHealth(svc *kms.Service) (string, error) {
	if o.cfg.Metrics.Listen == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", o.cfg.Metrics.Listen)
	if err != nil {
		return "", fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	ready := o.ready(svc)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := ready(ctx); err != nil {
			o.log.Warn("not ready", "err", errors.Unwrap(err))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not ready"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	// The API listener's timeouts: idle and slow connections must not pile
	// up on the health listener either.
	o.healthSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: time.Duration(o.cfg.HTTP.ReadTimeout), WriteTimeout: time.Duration(o.cfg.HTTP.WriteTimeout),
		IdleTimeout: time.Duration(o.cfg.HTTP.IdleTimeout)}
	go func() { _ = o.healthSrv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// close stops the health listener and drains and closes the audit file.
func (o *observability) close() error {
	if o.healthSrv != nil {
		_ = o.healthSrv.Close()
	}
	return o.audit.Close()
}
