package redisstore_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
)

// redisServer is a redis-server process started for one test.
type redisServer struct{ *testsupport.Redis }

// startRedis starts a redis-server for t (testsupport.StartRedis).
func startRedis(t testing.TB) redisServer { return redisServer{testsupport.StartRedis(t)} }

// Client returns a client of the server, closed when t ends.
func (s redisServer) Client(t testing.TB) *redis.Client {
	return newClient(t, s.Addr)
}

// freePort returns a loopback TCP port that was free a moment ago.
var freePort = testsupport.FreePort

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
