// Package metrics is kmsd's Prometheus instrumentation: request counts and
// latencies per operation, throttled requests, HSM operation latency by
// mechanism (a Device decorator), session pool and handle index figures,
// the audit trail's queue and commit latency, and key counts by state.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hsmkms/hsm"
)

const namespace = "kmsd"

// Metrics holds the collectors. A nil *Metrics records nothing.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	throttled   *prometheus.CounterVec
	hsmLatency  *prometheus.HistogramVec
	hsmErrors   *prometheus.CounterVec
	auditCommit prometheus.Histogram
	auditBatch  prometheus.Histogram
	auditFailed prometheus.Counter
}

// New registers the collectors in a fresh registry (with the Go runtime and
// process collectors).
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "API requests by operation and error code (\"\" for success).",
	}, []string{"operation", "error_code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "request_duration_seconds",
		Help:    "API request latency by operation, from the first middleware to the response.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "throttled_requests_total",
		Help: "Requests refused with ThrottlingException, by operation and quota class.",
	}, []string{"operation", "quota"})
	m.hsmLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "hsm_operation_duration_seconds",
		Help:    "HSM (PKCS#11) call latency by operation and mechanism, session wait included.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1, 5, 30},
	}, []string{"operation", "mechanism"})
	m.hsmErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "hsm_operation_errors_total",
		Help: "HSM calls that returned an error, by operation and mechanism.",
	}, []string{"operation", "mechanism"})
	m.auditCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "audit_commit_duration_seconds",
		Help:    "Time of one audit group commit (transaction and fsync).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.auditBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "audit_commit_events",
		Help:    "Events per audit group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.auditFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "audit_record_failures_total",
		Help: "Audit events that could not be recorded (the request was answered with an error).",
	})
	m.reg.MustRegister(m.requests, m.latency, m.throttled, m.hsmLatency, m.hsmErrors, m.auditCommit, m.auditBatch, m.auditFailed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry (tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest counts one API request.
func (m *Metrics) ObserveRequest(operation, errorCode string, d time.Duration) {
	if m == nil {
		return
	}
	if operation == "" {
		operation = "unknown"
	}
	m.requests.WithLabelValues(operation, errorCode).Inc()
	m.latency.WithLabelValues(operation).Observe(d.Seconds())
}

// Throttled counts one request refused by a quota.
func (m *Metrics) Throttled(operation, class string) {
	if m == nil {
		return
	}
	m.throttled.WithLabelValues(operation, class).Inc()
}

// AuditCommitted records one audit group commit.
func (m *Metrics) AuditCommitted(events int, d time.Duration) {
	if m == nil {
		return
	}
	m.auditCommit.Observe(d.Seconds())
	m.auditBatch.Observe(float64(events))
}

// AuditFailed counts an event that could not be recorded.
func (m *Metrics) AuditFailed() {
	if m == nil {
		return
	}
	m.auditFailed.Inc()
}

// RegisterAuditQueue exports the audit queue depth.
func (m *Metrics) RegisterAuditQueue(depth func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "audit_queue_depth",
		Help: "Audit events waiting for the writer.",
	}, func() float64 { return float64(depth()) }))
}

// RegisterHSMStats exports the session pool and handle index figures of a
// device that has them (the PKCS#11 device does; the fake does not).
func (m *Metrics) RegisterHSMStats(dev hsm.Device) {
	sd, ok := dev.(interface{ Stats() hsm.Stats })
	if !ok {
		return
	}
	g := func(name, help string, f func(hsm.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return f(sd.Stats()) })
	}
	m.reg.MustRegister(
		g("hsm_session_pool_size", "PKCS#11 sessions in the pool.", func(s hsm.Stats) float64 { return float64(s.PoolSize) }),
		g("hsm_session_pool_in_use", "PKCS#11 sessions borrowed right now.", func(s hsm.Stats) float64 { return float64(s.InUse) }),
		g("hsm_handle_index_size", "Entries of the backing id to object handle index.", func(s hsm.Stats) float64 { return float64(s.Handles) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "hsm_session_pool_waits_total",
			Help: "Borrowers that found no free PKCS#11 session and waited."}, func() float64 { return float64(sd.Stats().Waits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "hsm_session_pool_wait_seconds_total",
			Help: "Total time spent waiting for a free PKCS#11 session."}, func() float64 { return sd.Stats().WaitTime.Seconds() }),
	)
}

// RegisterKeyCounts exports key counts by state, read at scrape time.
func (m *Metrics) RegisterKeyCounts(count func(context.Context) (map[string]int, error)) {
	m.reg.MustRegister(&keyCounts{count: count, desc: prometheus.NewDesc(namespace+"_keys",
		"Customer keys by state.", []string{"state"}, nil)})
}

type keyCounts struct {
	count func(context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func (k *keyCounts) Describe(ch chan<- *prometheus.Desc) { ch <- k.desc }

func (k *keyCounts) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := k.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(k.desc, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.GaugeValue, float64(n), state)
	}
}
