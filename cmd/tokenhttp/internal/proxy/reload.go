package proxy

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// watchSecrets polls the current generation's secret files, at most once
// a second, and rebuilds the generation from the same config when one of
// them changed, so that rotated credentials are used from then on.
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g := p.cur.Load()
		changed := ""
		for name, sum := range g.files {
			b, err := os.ReadFile(name)
			if err != nil || sha256.Sum256(b) != sum {
				changed = name
				break
			}
		}
		if changed == "" {
			continue
		}
		p.reloadMu.Lock()
		if p.cur.Load() == g { // not reloaded meanwhile
			p.log.Info("secret file changed; rebuilding the sources", "file", changed)
			if err := p.swap(g.cfg, "secret reload"); err != nil {
				// Keep the old sources, and do not retry until the file
				// changes again.
				for name := range g.files {
					if b, err := os.ReadFile(name); err == nil {
						g.files[name] = sha256.Sum256(b)
					}
				}
			}
		}
		p.reloadMu.Unlock()
	}
}
