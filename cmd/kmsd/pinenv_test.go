package main

import "testing"

// The PIN variable is unset once read, so it is neither in
// /proc/<pid>/environ nor inherited by child processes.
func TestRunUnsetsPINEnv(t *testing.T) {
	st := newE2EState(t)
	s := st.start(t)
	if s.pinEnvAfterStart != "" {
		t.Errorf("KMSD_HSM_PIN is still set in the kmsd process environment")
	}
	s.stop(t)
	st.start(t).stop(t) // the helper put it back for restarts
}
