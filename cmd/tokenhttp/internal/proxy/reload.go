package proxy

import (
	"context"
	"crypto/sha256"
	"time"
)

// watchSecrets polls the current generation's secret files, at most once
// a second, and rebuilds the generation from the same config when one of
// them changed, so that rotated credentials are used from then on. Each
// state of the files (a new content, a file gone or empty) is acted on
// and logged once: a rebuild that failed is not retried until a file
// changes again. A route whose rebuilt source got no token for a
// temporary failure (it kept its running one: generation.pending) is
// rebuilt again at the following polls, backing off to 30 s, until its
// new source gets one; one whose credentials were refused, or whose
// provider uses one-time passwords (generation.held), is not: it waits
// for a file change or a reload.
func (p *Proxy) watchSecrets(ctx context.Context) {
	defer close(p.watchDone)
	every := p.opts.SecretPoll
	if every < 0 {
		<-ctx.Done()
		return
	}
	every = max(every, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		seenGen *generation         // the generation seen last
		seen    map[string][32]byte // its files' states acted on last
		retryAt time.Time           // when to retry its pending routes
		backoff time.Duration
		stalled bool // its rebuild failed: no retry until a file changes
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g := p.cur.Load()
		if g != seenGen {
			seenGen, seen = g, map[string][32]byte{}
			for name, sum := range g.files {
				seen[name] = sum
			}
			backoff, stalled = every, false
			retryAt = time.Now().Add(backoff)
		}
		changed := ""
		for name := range g.files {
			st := p.fileState(g.fileRefs[name])
			if st != seen[name] {
				seen[name] = st
				changed = name
			}
		}
		retry := len(g.pending) > 0 && !stalled && !time.Now().Before(retryAt)
		if changed == "" && !retry {
			continue
		}
		p.reloadMu.Lock()
		same := p.cur.Load() == g // not reloaded meanwhile
		var err error
		if same {
			if changed != "" {
				p.log.Info("secret file changed; rebuilding the sources", "file", changed)
			}
			err = p.swap(ctx, g.cfg, "secret reload", changed == "") // a failure is logged; the old sources stay
			same = p.cur.Load() == g                                 // nothing changed: still pending
		}
		p.reloadMu.Unlock()
		if same {
			stalled = err != nil
			if retry {
				backoff = min(2*backoff, 30*time.Second)
				retryAt = time.Now().Add(backoff)
			}
		}
	}
}

// fileState is the digest of the secret in ref's file, or the zero value
// when it cannot be read (missing, empty).
func (p *Proxy) fileState(ref SecretRef) [32]byte {
	v, err := ref.Read(p.opts.Getenv)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256([]byte(v))
}
