package redisstore_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
)

// redisServer is a redis-server process started for one test.
type redisServer struct {
	Addr string

	cmd    *exec.Cmd
	output *syncBuffer
	waitFn func()    // waits for the process to exit
	once   sync.Once // guards the kill and wait
}

// startRedis starts redis-server on a free loopback port in a temporary
// directory, with no persistence, and stops it when t ends. Without
// redis-server on PATH the test fails when CI=true and is skipped
// otherwise.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not on PATH (CI=true: a missing Redis is a failure): %v", err)
		}
		t.Skip("redis-server is not on PATH; install it to run these tests (Debian: apt-get install -y redis-server)")
	}
	var lastErr error
	for range 5 { // the free port may be taken before redis-server binds it
		s, err := tryRedis(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func tryRedis(t testing.TB, bin string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &redisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), output: &syncBuffer{}}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no")
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	s.waitFn = func() { <-exited }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.Addr) == nil {
			t.Cleanup(s.Kill)
			return s, nil
		}
		select {
		case err := <-exited:
			s.waitFn = func() {}
			return nil, fmt.Errorf("redis-server exited (%v): %s", err, s.output.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, fmt.Errorf("redis-server did not answer on %s: %s", s.Addr, s.output.String())
		}
	}
}

// Kill kills the server and waits for it to exit. It may be called more
// than once.
func (s *redisServer) Kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		s.waitFn()
	})
}

// Pause stops the server (SIGSTOP) until Resume: connections stay open
// and nothing answers, as in a Redis that is slow.
func (s *redisServer) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused server.
func (s *redisServer) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Client returns a client of the server, closed when t ends.
func (s *redisServer) Client(t testing.TB) *redis.Client {
	return newClient(t, s.Addr)
}

// ping sends PING to addr and expects PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer = testsupport.SyncBuffer
