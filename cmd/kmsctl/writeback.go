package main

import "os"

// writebackEvery is how many bytes an output file grows between two
// requests to start writing it back. The file must be on disk before it is
// renamed into place, and left to itself the kernel writes back a 1 GiB
// file only when Commit calls fsync (the dirty thresholds are gigabytes on
// a large machine): that fsync then waits for the whole file, after all
// the crypto is done, and cost a third of a 1 GiB encrypt. Starting the
// writeback of each completed range while the rest is being encrypted
// overlaps the disk with the CPU, and the final fsync only waits for the
// last range.
const writebackEvery = 8 << 20

// writeback starts the writeback of an output file's completed ranges
// from its own goroutine, so that the writer (and the pipeline behind it)
// never waits for the disk. It only starts writeback
// (SYNC_FILE_RANGE_WRITE, no waiting): durability still comes from the
// fsync in Commit, which also reports any error of the writeback started
// here (starting writeback does not consume the file's error state).
type writeback struct {
	f       *os.File
	sync    func(fd uintptr, off, n int64) error // startWriteback, or a test's
	written int64                                // by Write
	kicked  int64                                // by Write: offset of the last request
	kick    chan int64
	done    chan struct{}
	err     error // set by run before it closes done
	stopped bool
}

func newWriteback(f *os.File, sync func(fd uintptr, off, n int64) error) *writeback {
	w := &writeback{f: f, sync: sync, kick: make(chan int64, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// wrote records n more bytes written at the end of the file, and asks the
// goroutine to start writing back what is complete since its last request
// once writebackEvery bytes have accumulated. It never blocks: if the
// goroutine is still busy, the next request covers the longer range.
func (w *writeback) wrote(n int) {
	w.written += int64(n)
	if w.written-w.kicked < writebackEvery {
		return
	}
	select {
	case w.kick <- w.written:
		w.kicked = w.written
	default:
	}
}

func (w *writeback) run() {
	defer close(w.done)
	var from int64
	var err error
	for to := range w.kick {
		if err != nil {
			continue // drain: Write never blocks on kick
		}
		err = w.syncRange(from, to)
		from = to
	}
	w.err = err
}

func (w *writeback) syncRange(from, to int64) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = w.sync(fd, from, to-from) }); err != nil {
		return err
	}
	return serr
}

// stop (idempotent) waits for the goroutine and returns the error that made it stop
// starting writeback, if it is one the caller must not ignore (the file
// system or the kernel not supporting it is not: fsync still does the
// whole job).
func (w *writeback) stop() error {
	if !w.stopped {
		w.stopped = true
		close(w.kick)
		<-w.done
	}
	if w.err != nil && !writebackUnsupported(w.err) {
		return w.err
	}
	return nil
}
