package envelope

import "testing"

// TestDecryptBoundsHugeFrames: decrypt keeps as few batches of huge frames
// in flight as encrypt does (two), within the pipeline's memory budget;
// the frame length it counted was capped at 1 MiB, so messages with 64 MiB
// frames held a full pool of them (hundreds of MiB).
func TestDecryptBoundsHugeFrames(t *testing.T) {
	for _, workers := range []int{1, 4, 16} {
		if got := poolSize(workers, decryptJobSize(64<<20)); got != 2 {
			t.Errorf("%d workers, 64 MiB frames: %d batches in flight, want 2", workers, got)
		}
		if got := poolSize(workers, decryptJobSize(4096)); got < 2*workers+2 && got < maxJobs {
			t.Errorf("%d workers, 4 KiB frames: %d batches, want enough to keep the workers busy", workers, got)
		}
	}
}
