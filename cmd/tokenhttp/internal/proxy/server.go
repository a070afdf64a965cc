package proxy

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/redisstore"
)

// Options are the proxy's settings that do not come from the config file.
type Options struct {
	// ConfigPath is the file Reload reads; empty: Reload fails.
	ConfigPath string
	// Logger receives one line per rejected request and per token event;
	// nil discards them.
	Logger *slog.Logger
	// Getenv reads *_env secrets; nil means os.Getenv.
	Getenv func(string) string
	// Telemetry is where metrics and traces go; nil: a new one.
	Telemetry *Telemetry
	// Upstream sends requests to the upstreams; nil: a clone of
	// http.DefaultTransport.
	Upstream http.RoundTripper
	// TokenClient sends token requests; nil: the source's default.
	TokenClient *http.Client
	// SecretPoll is how often secret files are checked for changes; zero
	// means once a second, the least. Negative: never.
	SecretPoll time.Duration
}

// Proxy is a running proxy: a handler for proxied requests, one for the
// admin endpoints, and the generation of routes and sources in use. Reload
// swaps the generation; requests in flight finish on the one they started
// on, whose sources are closed when the last of them ends.
type Proxy struct {
	opts   Options
	log    *slog.Logger
	errLog *log.Logger // log over the proxy's handler, for net/http's ErrorLog
	tel    *Telemetry
	own    bool // tel was made here: Shutdown shuts it down

	cur      atomic.Pointer[generation]
	draining atomic.Bool       // Shutdown has begun: /readyz answers 503
	reloadMu sync.Mutex        // serializes Reload and the secret watcher, and guards down and warmErr
	down     bool              // Shutdown has begun: no more reloads
	warmErr  map[string]string // by prefix, of the routes still waiting: the warm-up failure logged last, which the watcher's retries do not log again

	srv, admin     *http.Server
	ln, adminLn    net.Listener
	stopWatch      context.CancelFunc
	watchDone      chan struct{}
	shutdownOnce   sync.Once
	serveErr       chan error
	listen, adminA string
}

// generation is one config's routes and sources.
type generation struct {
	cfg       *Config
	routes    []*route
	match     func(*http.Request) source.TokenSource // PrefixRoutes over the recorders
	byRec     map[source.TokenSource]*route
	unmatched http.Handler
	maxBody   int64
	closers   []io.Closer          // the generation's own: closed with it
	files     map[string][32]byte  // secret files and the digests of what was read
	fileRefs  map[string]SecretRef // how to read each of files again
	store     *sharedStore         // nil without a store; the generation holds a reference
	// pending are the prefixes of routes that kept the source of the
	// generation before, because the one built for them got no token for
	// a temporary failure: the watcher retries their rebuild. held are
	// those that kept it because their credentials were refused, or
	// because their provider uses one-time passwords: a retry would send
	// the same credentials again, so they wait for a secret file's change
	// or a reload.
	pending, held []string
	log           *slog.Logger

	sets sync.Map // attrKey -> metric.MeasurementOption, built once each

	refs      atomic.Int64 // in-flight requests, +1 while current
	closeOnce sync.Once
	done      chan struct{} // closed when close has ended
}

// route is one prefix, its recording source and its handler.
type route struct {
	prefix  string
	src     *shared // the generation holds a reference
	rec     *recorder
	handler http.Handler
	attrs   attribute.KeyValue
}

// New builds a proxy for cfg and starts warming each route's token in the
// background. It does not listen: see Start, Handler and AdminHandler.
func New(ctx context.Context, cfg *Config, o Options) (*Proxy, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Upstream == nil {
		o.Upstream = http.DefaultTransport.(*http.Transport).Clone()
	}
	p := &Proxy{opts: o, log: o.Logger, tel: o.Telemetry, errLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}
	if p.tel == nil {
		t, err := NewTelemetry(ctx, o.Getenv)
		if err != nil {
			return nil, err
		}
		p.tel, p.own = t, true
	}
	g, err := p.build(context.Background(), cfg, nil, false)
	if err != nil {
		if p.own {
			_ = p.tel.Shutdown(ctx)
		}
		return nil, err
	}
	p.cur.Store(g)
	wctx, cancel := context.WithCancel(context.Background())
	p.stopWatch, p.watchDone = cancel, make(chan struct{})
	go p.watchSecrets(wctx)
	return p, nil
}

// Handler returns the proxy's request handler.
func (p *Proxy) Handler() http.Handler { return http.HandlerFunc(p.serve) }

// AdminHandler serves /livez, /readyz and /metrics.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", p.serveReady)
	mux.Handle("GET /metrics", p.tel.MetricsHandler())
	return mux
}

// Readiness is the /readyz body.
type Readiness struct {
	Ready bool `json:"ready"`
	// State is "draining" once Shutdown has begun (Ready is false then),
	// and empty otherwise: each route's state says why it is not ready.
	State  string       `json:"state,omitempty"`
	Routes []RouteState `json:"routes"`
}

// Ready reports each route's readiness; once Shutdown has begun, the
// proxy is not ready whatever its routes' state.
func (p *Proxy) Ready() Readiness {
	g := p.cur.Load()
	now := time.Now()
	rd := Readiness{Ready: true}
	for _, rt := range g.routes {
		st := rt.rec.state(now)
		rd.Ready = rd.Ready && st.Ready
		rd.Routes = append(rd.Routes, st)
	}
	if p.draining.Load() {
		rd.Ready, rd.State = false, "draining"
	}
	return rd
}

func (p *Proxy) serveReady(w http.ResponseWriter, r *http.Request) {
	rd := p.Ready()
	b, _ := json.Marshal(rd)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(b, '\n'))
}

// Start listens on the config's listen and admin addresses and serves
// until Shutdown.
func (p *Proxy) Start() error {
	cfg := p.cur.Load().cfg
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	aln, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin: %w", err)
	}
	p.ln, p.adminLn = ln, aln
	p.listen, p.adminA = cfg.Listen, cfg.Admin
	p.srv = &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 30 * time.Second, ErrorLog: p.errLog}
	p.admin = &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: p.errLog}
	p.serveErr = make(chan error, 2)
	go func() { p.serveErr <- p.srv.Serve(ln) }()
	go func() { p.serveErr <- p.admin.Serve(aln) }()
	p.log.Info("proxy listening", "listen", ln.Addr().String(), "admin", aln.Addr().String(), "routes", len(cfg.Routes))
	return nil
}

// Failed receives the error of a listener (the proxy's or the admin's)
// that stopped serving on its own after Start, so that the process can
// exit instead of running without it. After Shutdown it may receive
// http.ErrServerClosed.
func (p *Proxy) Failed() <-chan error { return p.serveErr }

// Addr and AdminAddr are the addresses Start listens on.
func (p *Proxy) Addr() string      { return p.ln.Addr().String() }
func (p *Proxy) AdminAddr() string { return p.adminLn.Addr().String() }

// Shutdown stops accepting requests, waits for those in flight until ctx
// is done (then closes their connections), and closes every source.
// From its start /readyz answers 503 (state "draining"); the admin
// listener, and /livez, serve until the drain has ended.
func (p *Proxy) Shutdown(ctx context.Context) error {
	var err error
	p.shutdownOnce.Do(func() {
		p.draining.Store(true)
		p.stopWatch()
		<-p.watchDone
		if p.srv != nil {
			if err = p.srv.Shutdown(ctx); err != nil {
				p.log.Warn("drain timed out; closing the remaining connections", "error", err.Error())
				_ = p.srv.Close()
			}
			_ = p.admin.Close()
		}
		p.reloadMu.Lock()
		p.down = true
		g := p.cur.Load()
		p.reloadMu.Unlock()
		g.release() // the current generation's own reference
		g.waitClosed(ctx)
		if p.own {
			err = errors.Join(err, p.tel.Shutdown(context.WithoutCancel(ctx)))
		}
	})
	return err
}

// Reload reads the config file again and swaps in the new routes and
// sources. A bad config is logged and returned, and the old one kept.
func (p *Proxy) Reload() error {
	if p.opts.ConfigPath == "" {
		return errors.New("reload: the proxy has no config file")
	}
	cfg, err := LoadConfig(p.opts.ConfigPath)
	if err != nil {
		p.log.Error("reload failed; keeping the running config", "error", err.Error())
		return err
	}
	return p.ReloadConfig(cfg, "reload")
}

// ReloadConfig swaps in cfg; see Reload. A route whose source config and
// secrets are unchanged keeps its source, and its token; a route whose
// source changed gets a new one only once it holds a token (see build).
func (p *Proxy) ReloadConfig(cfg *Config, why string) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	return p.swap(context.Background(), cfg, why, false)
}

// swap builds cfg over the current generation and makes it current;
// p.reloadMu is held. A rebuild of the current config that changes
// nothing (a retry whose new sources still get no token) swaps nothing.
// retry is the watcher's retry of the pending routes: the held ones are
// not rebuilt then.
func (p *Proxy) swap(ctx context.Context, cfg *Config, why string, retry bool) error {
	if p.down {
		return errors.New(why + ": the proxy is shutting down")
	}
	cur := p.cur.Load()
	g, err := p.build(ctx, cfg, cur, retry)
	if err != nil {
		p.log.Error(why+" failed; keeping the running config", "error", err.Error())
		return err
	}
	if cfg == cur.cfg && g.sameSources(cur) && maps.Equal(g.files, cur.files) && slices.Equal(g.pending, cur.pending) && slices.Equal(g.held, cur.held) {
		g.release()
		return nil
	}
	if p.ln != nil && (cfg.Listen != p.listen || cfg.Admin != p.adminA) {
		p.log.Warn("listen and admin addresses change only on restart", "listen", p.listen, "admin", p.adminA)
	}
	old := p.cur.Swap(g)
	old.release()
	p.log.Info(why+" done", "routes", len(cfg.Routes), "kept_running_source", len(g.pending)+len(g.held))
	return nil
}

// sameSources reports whether g uses old's sources and store, route for
// route.
func (g *generation) sameSources(old *generation) bool {
	if g.store != old.store || len(g.routes) != len(old.routes) {
		return false
	}
	for i, rt := range g.routes {
		if rt.src != old.routes[i].src {
			return false
		}
	}
	return true
}

// acquire returns the current generation with a reference for one request.
func (p *Proxy) acquire() *generation {
	for {
		g := p.cur.Load()
		if g.refs.Add(1) > 1 {
			return g
		}
		g.release() // it was retired and closed meanwhile: take the new one
	}
}

// release drops a reference; the last one closes the generation.
func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		g.closeOnce.Do(g.close)
	}
}

// close releases the generation's sources and store (each is closed
// when no generation holds it any more) and closes its own closers.
func (g *generation) close() {
	for _, rt := range g.routes {
		rt.src.release()
	}
	g.store.release()
	for _, c := range g.closers {
		_ = c.Close()
	}
	close(g.done)
}

// waitClosed waits until the generation is closed (its last request
// ended), or ctx is done: then it closes the generation at once.
func (g *generation) waitClosed(ctx context.Context) {
	select {
	case <-g.done:
	case <-ctx.Done():
		g.closeOnce.Do(g.close)
	}
}

// build reads the secrets and makes cfg's sources and handlers. Over
// old, the running generation (nil at start), a route whose source config
// and secrets are unchanged shares old's source; a route whose source
// changed gets a new one, warmed with one Token call bounded by its fetch
// timeout (or ctx) before build returns: if that call fails, the route
// keeps old's source (if its upstream is unchanged: see warm), the failure
// is logged, and the prefix is listed in pending for the watcher to
// retry, or in held. A retry (the watcher's, of the pending routes) does
// not rebuild old's held routes. Without old, sources warm in the
// background.
func (p *Proxy) build(ctx context.Context, cfg *Config, old *generation, retry bool) (_ *generation, err error) {
	g := &generation{cfg: cfg, byRec: map[source.TokenSource]*route{}, maxBody: cfg.MaxReplayBody,
		files: map[string][32]byte{}, log: p.log, done: make(chan struct{})}
	g.refs.Store(1)
	srcs := make([]*shared, len(cfg.Routes))
	defer func() {
		if err != nil {
			for _, s := range srcs {
				if s != nil {
					s.release()
				}
			}
			g.store.release()
			for _, c := range g.closers {
				_ = c.Close()
			}
		}
	}()
	prev := map[string]*shared{}
	prevRoute := map[string]Route{}
	if old != nil {
		for _, rt := range old.routes {
			prev[rt.prefix] = rt.src
		}
		for _, rc := range old.cfg.Routes {
			prevRoute[rc.Prefix] = rc
		}
	}
	if cfg.Store != nil {
		if g.store, err = p.openStore(cfg.Store, g, old); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	var warm []int // routes whose new source must get a token first
	// keep[i]: route i may keep its running source if its new one gets no
	// token, its upstream side being unchanged; otherwise it fails closed.
	keep := make([]bool, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		sc, sum, err := p.readSource(rc, g)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.Prefix, err)
		}
		if ps := prev[rc.Prefix]; ps != nil && ps.same(cfg, rc, sum, g.store) {
			ps.acquire()
			srcs[i] = ps
			continue
		}
		if ps := prev[rc.Prefix]; ps != nil && retry && slices.Contains(old.held, rc.Prefix) {
			ps.acquire() // it waits for a file change or a reload
			srcs[i] = ps
			g.held = append(g.held, rc.Prefix)
			continue
		}
		if g.store != nil {
			sc.Store = g.store.store
		}
		src, err := source.New(sc)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.Prefix, err)
		}
		srcs[i] = newShared(rc, cfg, sum, src, newRecorder(src, rc.Prefix, p.log), g.store)
		if prev[rc.Prefix] != nil {
			warm = append(warm, i)
			keep[i] = sameUpstream(prevRoute[rc.Prefix], rc)
		}
	}
	// A reload or a file change logs its warm-up failures afresh; the
	// watcher's retries log only a failure that changed. Only routes still
	// waiting are remembered.
	if !retry || p.warmErr == nil {
		p.warmErr = map[string]string{}
	}
	if len(warm) > 0 {
		p.warm(ctx, cfg, srcs, warm, keep, prev, g)
	}
	for prefix := range p.warmErr {
		if !slices.Contains(g.pending, prefix) && !slices.Contains(g.held, prefix) {
			delete(p.warmErr, prefix)
		}
	}

	tel := tokenhttp.WithTelemetry(p.tel.Providers)
	match := map[string]source.TokenSource{}
	for i, rc := range cfg.Routes {
		sh := srcs[i]
		rec := sh.rec
		up := upstreamFor(p.opts.Upstream, rc, sh.src, g)
		opts := []tokenhttp.Option{tel, tokenhttp.WithBase(up)}
		if rc.AllowInsecureUpstream {
			opts = append(opts, tokenhttp.WithInsecureHTTP())
		}
		rp := &httputil.ReverseProxy{
			Rewrite:      rewrite(rc),
			Transport:    tokenhttp.NewTransport(rec, opts...),
			BufferPool:   &buffers,
			ErrorHandler: p.upstreamError(rc.Prefix),
			ErrorLog:     p.errLog,
		}
		rt := &route{prefix: rc.Prefix, src: sh, rec: rec, attrs: attribute.String("route", rc.Prefix),
			handler: tokenhttp.Middleware(rec, tel)(forwarded(rp))}
		g.routes = append(g.routes, rt)
		g.byRec[rec] = rt
		match[rc.Prefix] = rec
	}
	clear(srcs) // the routes hold them now
	g.match = tokenhttp.PrefixRoutes(match)
	var next http.Handler = http.NotFoundHandler()
	unmatched := tokenhttp.WithUnmatched(tokenhttp.UnmatchedNotFound)
	if cfg.PassThrough != nil {
		unmatched = tokenhttp.WithUnmatched(tokenhttp.UnmatchedPassThrough)
		next = forwarded(&httputil.ReverseProxy{
			Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetURL(cfg.PassThrough) },
			Transport:    p.opts.Upstream,
			BufferPool:   &buffers,
			ErrorHandler: p.upstreamError(""),
			ErrorLog:     p.errLog,
		})
	}
	g.unmatched = tokenhttp.RoutedMiddleware(func(*http.Request) source.TokenSource { return nil }, unmatched, tel)(next)
	for _, rt := range g.routes {
		rt.src.start() // already running for a source kept from old
	}
	return g, nil
}

// sameUpstream reports whether a and b send requests to the same upstream
// the same way: only then may a route keep the source (the token, the
// client certificate) it had for a when its new one gets no token.
func sameUpstream(a, b Route) bool {
	return a.Upstream != nil && b.Upstream != nil && a.Upstream.String() == b.Upstream.String() &&
		a.StripPrefix == b.StripPrefix && a.AllowInsecureUpstream == b.AllowInsecureUpstream &&
		(a.UpstreamRoots == nil) == (b.UpstreamRoots == nil) &&
		(a.UpstreamRoots == nil || a.UpstreamRoots.Equal(b.UpstreamRoots))
}

// warm asks each new source of srcs[i], i in idx, for a token, at once,
// each bounded by its fetch timeout. A source that got none is closed and
// replaced by the one its route had in prev, and its prefix listed in
// g.pending, if keep[i] (g.held instead if its credentials were refused
// or its provider uses one-time passwords); a route whose upstream changed
// (!keep[i]) fails closed instead: it keeps its new source, cold, whose
// keeper goes on trying. A failure is logged unless p.warmErr has it
// already (see build). p.reloadMu is held.
func (p *Proxy) warm(ctx context.Context, cfg *Config, srcs []*shared, idx []int, keep []bool, prev map[string]*shared, g *generation) {
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for j, i := range idx {
		wg.Go(func() {
			ft := cfg.Routes[i].Source.FetchTimeout
			if ft <= 0 {
				ft = source.DefaultFetchTimeout
			}
			wctx, cancel := context.WithTimeout(ctx, ft)
			defer cancel()
			if tok, err := srcs[i].src.Token(wctx); err != nil || tok == nil {
				errs[j] = cmp.Or(err, errors.New("the source returned no token"))
				return
			}
			_, _ = srcs[i].rec.Token(wctx) // the token just cached: recorded for /readyz
		})
	}
	wg.Wait()
	for j, i := range idx {
		prefix := cfg.Routes[i].Prefix
		if errs[j] == nil {
			delete(p.warmErr, prefix)
			continue
		}
		if !keep[i] {
			if msg := errs[j].Error(); p.warmErr[prefix] != msg {
				p.warmErr[prefix] = msg
				p.log.Warn("route takes its new source without a token: its upstream changed, so the running source's token is not sent there; it answers 503 until the new source gets one",
					"route", prefix, "error_type", instrument.ErrorType(errs[j]), "error", msg)
			}
			continue
		}
		srcs[i].release()
		srcs[i] = prev[prefix]
		srcs[i].acquire()
		var te *source.Error
		refused := errors.As(errs[j], &te) && !te.Temporary()
		sc := cfg.Routes[i].Source
		otp := sc.Provider != nil && sc.Provider.OneTimePassword
		msg := "route keeps its running source: the rebuilt one got no token; retrying later"
		switch {
		case refused:
			msg = "route keeps its running source: the rebuilt one's credentials were refused; not retried until a secret file changes or a reload"
		case otp:
			msg = "route keeps its running source: the rebuilt one got no token, and its provider uses one-time passwords; not retried until a secret file changes or a reload"
		}
		if refused || otp {
			g.held = append(g.held, prefix)
		} else {
			g.pending = append(g.pending, prefix)
		}
		if e := errs[j].Error(); p.warmErr[prefix] != e { // the source's errors carry no secret
			p.warmErr[prefix] = e
			p.log.Warn(msg, "route", prefix, "error_type", instrument.ErrorType(errs[j]), "error", e)
		}
	}
}

// sourceConfig is rc's source.Config with its secrets read.
func (p *Proxy) sourceConfig(rc Route, g *generation) (source.Config, error) {
	sc, _, err := p.readSource(rc, g)
	return sc, err
}

// readSource is sourceConfig, and the digest of the secrets it read (and
// of the PKCS #12 file) that tells whether a source built before can
// serve rc.
func (p *Proxy) readSource(rc Route, g *generation) (source.Config, [32]byte, error) {
	h := sha256.New()
	sc := rc.Source
	sc.Telemetry = p.tel.Providers
	if p.opts.TokenClient != nil {
		sc.HTTPClient = p.opts.TokenClient
	}
	var err error
	if sc.HTTPClient, err = tokenClient(sc.HTTPClient, rc, g); err != nil {
		return sc, [32]byte{}, err
	}
	otp := sc.Provider != nil && sc.Provider.OneTimePassword
	for _, ref := range rc.Secrets {
		if otp && ref.Key == "password" {
			// Read anew for each token request, so not watched: writing
			// the next one-time password must not spend it.
			ref, getenv := ref, p.opts.Getenv
			sc.PasswordFunc = func(context.Context) (string, error) { return ref.Read(getenv) }
			continue
		}
		v, err := ref.Read(p.opts.Getenv)
		if err != nil {
			return sc, [32]byte{}, err
		}
		g.digest(ref, v)
		fmt.Fprintf(h, "%s\x00%d:%s\x00", ref.Key, len(v), v)
		if ref.Key == "client_certificate_p12_password" {
			if b, err := os.ReadFile(rc.P12File); err == nil {
				h.Write(b)
			}
			if sc.ClientCertificate, err = source.ClientCertificatePKCS12(rc.P12File, v); err != nil {
				return sc, [32]byte{}, fmt.Errorf("client_certificate_p12_file: %w", err)
			}
			continue
		}
		ref.set(&sc, v)
	}
	return sc, [32]byte(h.Sum(nil)), nil
}

// digest remembers v, the value just read from ref's file, for the
// secret watcher: the file is compared with what was used, not with a
// second read that a rotation in between would make agree with the file.
func (g *generation) digest(ref SecretRef, v string) {
	if ref.File == "" {
		return
	}
	if g.fileRefs == nil {
		g.fileRefs = map[string]SecretRef{}
	}
	g.files[ref.File] = sha256.Sum256([]byte(v))
	g.fileRefs[ref.File] = ref
}

// openStore connects to Redis, or shares old's store (with a reference
// for g) when its config and secrets are unchanged.
func (p *Proxy) openStore(sc *StoreConfig, g *generation, old *generation) (*sharedStore, error) {
	ropts, err := redis.ParseURL(sc.Redis)
	if err != nil {
		return nil, fmt.Errorf("redis: the URL does not parse") // its text may hold a secret
	}
	ropts.ContextTimeoutEnabled = true
	h := sha256.New()
	if sc.Password != nil {
		pw, err := sc.Password.Read(p.opts.Getenv)
		if err != nil {
			return nil, err
		}
		g.digest(*sc.Password, pw)
		fmt.Fprintf(h, "%d:%s\x00", len(pw), pw)
		ropts.Password = pw
	}
	var opts []redisstore.Option
	if sc.Key != nil {
		raw, err := sc.Key.Read(p.opts.Getenv)
		if err != nil {
			return nil, err
		}
		g.digest(*sc.Key, raw)
		fmt.Fprintf(h, "%d:%s\x00", len(raw), raw)
		key, err := decodeKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.Key.Key, err)
		}
		opts = append(opts, redisstore.WithKey(key))
	} else {
		opts = append(opts, redisstore.WithPlaintext())
	}
	sum := [32]byte(h.Sum(nil))
	if old != nil && old.store.same(sc, sum) {
		old.store.acquire()
		return old.store, nil
	}
	if sc.Prefix != "" {
		opts = append(opts, redisstore.WithPrefix(sc.Prefix))
	}
	client := redis.NewClient(ropts)
	st, err := redisstore.New(client, opts...)
	if err != nil {
		client.Close()
		return nil, err
	}
	unlog := redisLogs.add(p.log, ropts.Password)
	ss := &sharedStore{sc: *sc, sum: sum, store: st,
		closer: closerFunc(func() error { defer unlog(); return client.Close() })}
	ss.refs.Store(1)
	return ss, nil
}

// closerFunc is an io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// decodeKey reads an AES key written as hex, base64, or 16/24/32 raw bytes.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && validKeyLen(len(b)) {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && validKeyLen(len(b)) {
		return b, nil
	}
	if validKeyLen(len(s)) {
		return []byte(s), nil
	}
	return nil, errors.New("the key must be 16, 24 or 32 bytes, written as hex, base64 or raw")
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// buffers lends the ReverseProxies their 32 KiB copy buffers, which
// would otherwise be allocated (and cleared) for every response.
var buffers bufferPool

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == 32<<10 {
		buf = buf[:cap(buf)]
		b.p.Put(&buf)
	}
}

// rewrite points the outgoing request at rc's upstream.
func rewrite(rc Route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		exact := false
		if rc.StripPrefix && rc.Prefix != "/" {
			// What follows the prefix, with the slash that ends a prefix
			// like "/base/" given back: SetURL joins it to the upstream's
			// path with exactly one slash, and a trailing slash of the
			// client's stays.
			lead := ""
			if strings.HasSuffix(rc.Prefix, "/") {
				lead = "/"
			}
			u := pr.Out.URL
			u.Path = lead + strings.TrimPrefix(u.Path, rc.Prefix)
			if u.RawPath != "" {
				u.RawPath = lead + strings.TrimPrefix(u.RawPath, rc.Prefix)
			}
			exact = u.Path == ""
		}
		pr.SetURL(rc.Upstream)
		if exact { // the prefix itself: the upstream's own path, no slash added
			pr.Out.URL.Path, pr.Out.URL.RawPath = rc.Upstream.Path, rc.Upstream.RawPath
		}
	}
}

// upstreamError answers a request the upstream could not be reached for.
func (p *Proxy) upstreamError(prefix string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		if r.Context().Err() == context.Canceled {
			status = 499
		}
		p.log.Warn("upstream failed", "route", prefix, "method", r.Method, "path", r.URL.EscapedPath(), "status", status, "error", err.Error())
		writeProblem(w, status, "The gateway could not reach the upstream service.")
	}
}

// writeProblem writes an RFC 9457 problem+json reply.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// serve routes one request.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g := p.acquire()
	defer g.release()
	sw := writers.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w}
	defer func() { *sw = statusWriter{}; writers.Put(sw) }()
	rt := g.byRec[g.match(r)]
	routeAttr := attribute.String("route", "unmatched")
	if rt != nil {
		routeAttr = rt.attrs
	}
	// Deferred, so that a response aborted mid-body (ReverseProxy panics
	// with http.ErrAbortHandler) is counted too.
	defer p.record(r, sw, routeAttr, g, start)
	if rt == nil {
		g.unmatched.ServeHTTP(sw, r)
	} else {
		r2, err := bufferBody(r, g.maxBody)
		if err != nil {
			writeProblem(sw, http.StatusBadRequest, "The request body could not be read.")
		} else {
			rt.handler.ServeHTTP(sw, r2)
		}
	}
}

// record counts a request that ended (or was aborted) and logs it if it
// was rejected.
func (p *Proxy) record(r *http.Request, sw *statusWriter, routeAttr attribute.KeyValue, g *generation, start time.Time) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := g.attrs(routeAttr, status)
	ctx := r.Context() // the SDK records even when it is cancelled
	p.tel.requests.Add(ctx, 1, attrs.add...)
	p.tel.duration.Record(ctx, time.Since(start).Seconds(), attrs.rec...)
	if !sw.forwarded {
		p.log.Warn("request rejected", "route", routeAttr.Value.AsString(), "method", r.Method, "path", r.URL.EscapedPath(), "status", status)
	}
}

// attrKey names one attribute set of the request metrics.
type attrKey struct {
	route  string
	status int
}

// measureOpts are the options of one attribute set for the request
// counter and histogram, built once so that recording allocates nothing.
type measureOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// attrs returns the metric options for route and status, hashed once.
func (g *generation) attrs(route attribute.KeyValue, status int) *measureOpts {
	k := attrKey{route.Value.AsString(), status}
	if o, ok := g.sets.Load(k); ok {
		return o.(*measureOpts)
	}
	set := metric.WithAttributeSet(attribute.NewSet(route, attribute.Int("http.response.status_code", status)))
	o := &measureOpts{add: []metric.AddOption{set}, rec: []metric.RecordOption{set}}
	g.sets.Store(k, o)
	return o
}

// bufferBody returns r with its body read into memory and GetBody set,
// so that the Transport can replay it after a 401, when it is at most max
// bytes. A larger body is streamed (what was read first, then the rest)
// and not replayable.
func bufferBody(r *http.Request, max int64) (*http.Request, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || r.ContentLength > max {
		return r, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, err
	}
	r2 := r.WithContext(r.Context())
	if int64(len(buf)) > max {
		r2.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return r2, nil
	}
	r2.ContentLength = int64(len(buf))
	r2.Body = io.NopCloser(bytes.NewReader(buf))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	if len(buf) == 0 {
		r2.Body = http.NoBody
	}
	return r2, nil
}

// forwarded marks the request's statusWriter as forwarded before next
// sends it upstream: the reply is the upstream's, not a rejection.
func forwarded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sw, ok := w.(*statusWriter); ok {
			sw.forwarded = true
		}
		next.ServeHTTP(w, r)
	})
}

// writers are reused statusWriters: no handler keeps one after its
// request, and ReverseProxy does not either.
var writers = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter records the status written.
type statusWriter struct {
	http.ResponseWriter
	status    int
	forwarded bool
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Hijack takes the connection over for a protocol switch: ReverseProxy
// writes the upstream's 101 on it itself, so it is recorded here.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil && s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
