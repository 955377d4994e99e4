package envelope

import (
	"context"
	"crypto/cipher"
	"hash"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"hsmkms/kms/envelope/format"
)

// The body of a message goes through a pipeline of goroutines:
//
//	producer (the caller) -> workers (AES-GCM, in parallel) -> writer (in order)
//	                      \-> hasher (in order)
//
// Frames are independent AES-GCM operations (each has its own IV and AAD),
// so batches of frames are sealed or opened by several workers at once.
// The writer takes batches in the order the producer made them, waits for
// each one's worker, and writes it. For signed suites the hasher feeds the
// signature hash in message order (the hash is sequential by nature: it is
// a pipeline stage, not parallel work, and the bound of signed suites). It
// gets every batch from the producer, not from the writer, so a write that
// blocks (page cache, a slow pipe) never stalls it: decrypt hashes the
// frames as read at once, encrypt waits only for the batch's worker. A
// batch returns to the free list when both writer and hasher are done with
// it, so at most poolSize batches exist: memory is constant whatever the
// message size.

const (
	// maxWorkers bounds the AES-GCM workers; beyond a few, the sequential
	// stages (reading, writing, hashing) are the limit anyway.
	maxWorkers = 8
	// maxJobs bounds the batches of one pipeline. The two sequential
	// stages, writer and hasher, hold batches for different times: with 6
	// (two per worker and one each for producer and writer) a writer that
	// stalls for a few ms (O_DIRECT writes of whole chunks in kmsctl) soon
	// held every batch and starved the hasher; 16 absorb it (kmsctl
	// encrypt of 1 GiB to a file, signed: 1.58-1.65 s against 1.67-1.81 s).
	maxJobs = 16
	// inflightBytes is about how much buffer memory the batches of one
	// pipeline may hold; it only bites for very large frames.
	inflightBytes = 16 << 20
	// maxPooledBuffer: buffers larger than this (from very large frames)
	// are not kept in jobPool between messages.
	maxPooledBuffer = 4 << 20
)

// job is one batch of frames moving through the pipeline.
type job struct {
	in     []byte            // encrypt: plaintext; decrypt: the frames as read
	out    []byte            // encrypt: the frames; decrypt: plaintext
	frames []format.FrameRef // decrypt: the frames in in
	seq    uint32            // encrypt: sequence number of the first frame
	final  bool              // encrypt: in ends with the final frame
	err    error             // set by the worker
	// done gets one token from the worker per stage that waits for it
	// (the writer; the hasher of encrypt).
	done chan struct{}
	refs atomic.Int32 // stages still using the job: writer, hasher
}

// jobPool keeps batch buffers between messages, so a service encrypting
// many messages does not allocate a few hundred KiB for each.
var jobPool = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 2)} }}

// pipelineConfig describes one pass over a message body.
type pipelineConfig struct {
	key []byte // each worker makes its own AEAD from it
	// process seals or opens j.in into j.out, setting j.err on failure; aad
	// is the worker's scratch buffer, returned for reuse.
	process func(j *job, aead cipher.AEAD, aad []byte) []byte
	hasher  hash.Hash // nil: no signature
	hashIn  bool      // hash j.in (decrypt: the raw frames) instead of j.out
	writeIn bool      // write j.in (the spool pass) instead of j.out
	dst     io.Writer
	jobSize int // about the bytes of in+out of a full batch
}

type pipeline struct {
	cfg    pipelineConfig
	work   chan *job
	order  chan *job
	hashq  chan *job
	free   chan *job
	failed chan struct{} // closed on the first error (or abort): stop early
	once   sync.Once
	wg     sync.WaitGroup
	jobs   []*job
	// Set by the writer, read after wait.
	err     error
	written int64
	tokens  int // of job.done per job: 1, or 2 when the hasher waits too
}

// poolSize is how many batches a pipeline keeps: enough to keep every
// worker busy while the writer and the hasher each lag a few behind (see
// maxJobs); fewer for huge frames, but at least two.
func poolSize(workers, jobSize int) int {
	return max(2, min(max(2*workers+2, maxJobs), inflightBytes/max(1, jobSize)))
}

func startPipeline(cfg pipelineConfig) *pipeline {
	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	pool := poolSize(workers, cfg.jobSize)
	p := &pipeline{
		cfg:    cfg,
		work:   make(chan *job, pool),
		order:  make(chan *job, pool),
		free:   make(chan *job, pool),
		failed: make(chan struct{}),
		tokens: 1,
	}
	if cfg.hasher != nil && !cfg.hashIn {
		p.tokens = 2
	}
	for range pool {
		j := jobPool.Get().(*job)
		p.jobs = append(p.jobs, j)
		p.free <- j
	}
	if cfg.hasher != nil {
		p.hashq = make(chan *job, pool)
		p.wg.Add(1)
		go p.hash()
	}
	p.wg.Add(1 + workers)
	go p.write()
	for range workers {
		go p.worker()
	}
	return p
}

func (p *pipeline) isFailed() bool {
	select {
	case <-p.failed:
		return true
	default:
		return false
	}
}

// abort makes every stage skip what is left (the producer's context was
// cancelled: nothing more should be written).
func (p *pipeline) abort() { p.once.Do(func() { close(p.failed) }) }

// get returns a free job for the producer, or nil once the pipeline has
// failed or ctx is done.
func (p *pipeline) get(ctx context.Context) *job {
	select {
	case j := <-p.free:
		j.err = nil
		return j
	case <-p.failed:
		return nil
	case <-ctx.Done():
		return nil
	}
}

// put hands a filled job to the workers and, in order, to the writer.
func (p *pipeline) put(j *job) {
	refs := int32(1)
	if p.hashq != nil {
		refs = 2
	}
	j.refs.Store(refs)
	if p.hashq != nil {
		// Straight to the hasher (the bound of signed suites): decrypt
		// hashes the frames as read, at once; encrypt waits for the
		// worker, never for the writer.
		p.hashq <- j // capacity pool: never blocks
	}
	p.order <- j
	p.work <- j
}

// discard returns a job the producer took but will not fill.
func (p *pipeline) discard(j *job) { p.free <- j }

func (p *pipeline) release(j *job, n int32) {
	if j.refs.Add(-n) == 0 {
		p.free <- j // capacity pool: never blocks
	}
}

func (p *pipeline) worker() {
	defer p.wg.Done()
	aead, err := newAEAD(p.cfg.key)
	var aad []byte
	for j := range p.work {
		switch {
		case err != nil:
			j.err = err
		case !p.isFailed():
			aad = p.cfg.process(j, aead, aad)
		}
		for range p.tokens {
			j.done <- struct{}{} // capacity 2: never blocks
		}
	}
}

func (p *pipeline) write() {
	defer p.wg.Done()
	for j := range p.order {
		<-j.done
		if p.err == nil && j.err != nil {
			p.fail(j.err)
		}
		if p.isFailed() {
			p.release(j, 1)
			continue
		}
		b := j.out
		if p.cfg.writeIn {
			b = j.in
		}
		n, err := p.cfg.dst.Write(b)
		p.written += int64(n)
		if err != nil {
			p.fail(err)
		}
		p.release(j, 1)
	}
}

func (p *pipeline) fail(err error) {
	p.err = err
	p.abort()
}

func (p *pipeline) hash() {
	defer p.wg.Done()
	for j := range p.hashq {
		if p.cfg.hashIn {
			if !p.isFailed() {
				p.cfg.hasher.Write(j.in)
			}
		} else {
			<-j.done // sealed; a failed job is not hashed (the message fails)
			if j.err == nil && !p.isFailed() {
				p.cfg.hasher.Write(j.out)
			}
		}
		p.release(j, 1)
	}
}

// wait ends the pipeline after the producer's last put (or on its error)
// and returns the first error of the workers or the writer. Every
// goroutine has exited when it returns.
func (p *pipeline) wait() error {
	close(p.work)
	close(p.order)
	if p.hashq != nil {
		close(p.hashq)
	}
	p.wg.Wait()
	for _, j := range p.jobs {
		j.err, j.frames = nil, j.frames[:0]
		if cap(j.in) > maxPooledBuffer || cap(j.out) > maxPooledBuffer {
			j.in, j.out = nil, nil
		}
		jobPool.Put(j)
	}
	p.jobs = nil
	return p.err
}

// sealJob is the encrypt worker: it seals j.in into frames in j.out.
func sealJob(aead cipher.AEAD, messageID []byte, frameLen int, j *job, aad []byte) []byte {
	data := j.in
	frames := max(1, (len(data)+frameLen-1)/frameLen)
	out := slices.Grow(j.out[:0], len(data)+frames*format.FrameOverhead(true))
	seq := j.seq
	for {
		n := min(frameLen, len(data))
		final := j.final && len(data) <= frameLen
		out, aad = format.SealFrame(out, aead, messageID, seq, final, data[:n], aad)
		data = data[n:]
		seq++
		if len(data) == 0 {
			break
		}
	}
	j.out = out
	return aad
}

// openJob is the decrypt worker: it authenticates and decrypts the frames
// of j.in into j.out, and stops at the first that does not authenticate.
func openJob(aead cipher.AEAD, messageID []byte, j *job, aad []byte) []byte {
	out := slices.Grow(j.out[:0], len(j.in))
	for _, f := range j.frames {
		fm := format.Frame{Seq: f.Seq, Final: f.Final, IV: j.in[f.IV : f.IV+format.IVLen], Sealed: j.in[f.SealedAt:f.End]}
		o, a, err := format.OpenFrame(out, aead, messageID, fm, aad)
		aad = a
		if err != nil {
			j.err = newErr(KindTamperedBody, "frame %d does not authenticate", f.Seq)
			break
		}
		out = o
	}
	j.out = out
	return aad
}
