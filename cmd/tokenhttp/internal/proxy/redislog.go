package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// redisLogs routes go-redis's own log lines (a dial that failed, a pool
// hook's error) to the loggers of the proxies whose stores are open,
// instead of go-redis's default of plain lines on stderr. go-redis has one
// logger per process (redis.SetLogger, set here on the first store
// opened); a line cannot be told apart by client, so each open store's
// logger gets it, with every open store's password replaced.
var redisLogs = &redisLogger{open: map[*redisLogEntry]struct{}{}}

type redisLogger struct {
	once sync.Once
	mu   sync.Mutex // guards open
	open map[*redisLogEntry]struct{}
}

// redisLogEntry is one open store: where its lines go, and its password.
type redisLogEntry struct {
	log      *slog.Logger
	password string
}

// add registers an open store and returns the function that removes it
// when the store is closed.
func (l *redisLogger) add(log *slog.Logger, password string) (remove func()) {
	l.once.Do(func() { redis.SetLogger(l) })
	e := &redisLogEntry{log: log, password: password}
	l.mu.Lock()
	l.open[e] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.open, e)
		l.mu.Unlock()
	}
}

// Printf implements go-redis's internal.Logging.
func (l *redisLogger) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.mu.Lock()
	var logs []*slog.Logger
	for e := range l.open {
		if e.password != "" {
			msg = strings.ReplaceAll(msg, e.password, "REDACTED")
		}
	}
	for e := range l.open {
		if !slices.Contains(logs, e.log) {
			logs = append(logs, e.log)
		}
	}
	l.mu.Unlock()
	for _, lg := range logs {
		lg.LogAttrs(context.Background(), slog.LevelWarn, "redis client", slog.String("message", msg))
	}
}
