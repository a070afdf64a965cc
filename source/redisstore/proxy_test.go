package redisstore_test

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy on loopback in front of a Redis, with faults: it
// can drop the reply to the next command that contains a marker (closing
// the client's connection instead, as a network that loses the reply
// would), and it can delay every reply.
type proxy struct {
	Addr string

	target  string
	ln      net.Listener
	dropOn  atomic.Pointer[[]byte] // drop the reply to the next command containing it
	dropped atomic.Int64           // replies dropped
	delay   atomic.Int64           // nanoseconds each reply is held
	slowOn  atomic.Pointer[[]byte] // after the reply to a command containing it, delay replies
	slowBy  atomic.Int64           // the delay slowOn sets

	mu    sync.Mutex // guards conns
	conns []net.Conn
	wg    sync.WaitGroup
}

// newProxy starts a proxy to target, stopped when t ends.
func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{Addr: ln.Addr().String(), target: target, ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// DropReplyTo arms the proxy: the next command that contains marker
// reaches Redis, and its reply is lost with the connection.
func (p *proxy) DropReplyTo(marker string) {
	m := []byte(marker)
	p.dropOn.Store(&m)
}

// SetDelay holds every reply for d before it is forwarded.
func (p *proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SlowAfter arms the proxy: once the reply to a command that contains
// marker is forwarded, every reply is held for d.
func (p *proxy) SlowAfter(marker string, d time.Duration) {
	m := []byte(marker)
	p.slowBy.Store(int64(d))
	p.slowOn.Store(&m)
}

// Close stops the proxy and closes its connections.
func (p *proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		var dropping, slowing atomic.Bool
		p.wg.Add(2)
		go func() { // client to server
			defer p.wg.Done()
			defer server.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 {
					if m := p.dropOn.Load(); m != nil && bytes.Contains(buf[:n], *m) && p.dropOn.CompareAndSwap(m, nil) {
						dropping.Store(true)
					}
					if m := p.slowOn.Load(); m != nil && bytes.Contains(buf[:n], *m) && p.slowOn.CompareAndSwap(m, nil) {
						slowing.Store(true)
					}
					if _, err := server.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() { // server to client
			defer p.wg.Done()
			defer client.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					if dropping.Load() {
						p.dropped.Add(1)
						_ = server.Close()
						return
					}
					if d := time.Duration(p.delay.Load()); d > 0 {
						time.Sleep(d)
					}
					if _, err := client.Write(buf[:n]); err != nil {
						return
					}
					if slowing.CompareAndSwap(true, false) {
						p.delay.Store(p.slowBy.Load())
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
