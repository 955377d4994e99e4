package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress counts bytes read through it and, when enabled, redraws one
// status line on a terminal: bytes done, total, percentage, rate, ETA.
type progress struct {
	r     io.Reader
	n     atomic.Int64
	total int64 // -1 when unknown (stdin)
	w     io.Writer
	label string
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(r io.Reader, total int64, w io.Writer, label string, show bool) *progress {
	p := &progress{r: r, total: total, w: w, label: label, start: time.Now(), stop: make(chan struct{})}
	if show {
		p.wg.Add(1)
		go p.loop()
	}
	return p
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.draw(true)
			return
		case <-t.C:
			p.draw(false)
		}
	}
}

func (p *progress) draw(final bool) {
	done := p.n.Load()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	line := fmt.Sprintf("%s %s", p.label, human(done))
	if p.total >= 0 {
		pct := 100.0
		if p.total > 0 {
			pct = 100 * float64(done) / float64(p.total)
		}
		eta := "--:--"
		if rate > 0 {
			eta = clock(time.Duration(float64(p.total-done) / rate * float64(time.Second)))
		}
		line += fmt.Sprintf(" / %s %5.1f%%  %s/s  ETA %s", human(p.total), pct, human(int64(rate)), eta)
	} else {
		line += fmt.Sprintf("  %s/s", human(int64(rate)))
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r%-78s%s", line, end)
}

// Close stops the redraws (drawing the last state).
func (p *progress) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
