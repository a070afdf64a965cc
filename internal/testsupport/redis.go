package testsupport

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
)

// Redis is a redis-server process started for one test.
type Redis struct {
	Addr string

	cmd    *exec.Cmd
	output *SyncBuffer
	waitFn func()    // waits for the process to exit
	once   sync.Once // guards the kill and wait
}

// StartRedis starts redis-server on a free loopback port in a temporary
// directory, with no persistence, and kills it when t ends. Without
// redis-server on PATH the test fails when CI=true and is skipped
// otherwise.
func StartRedis(t testing.TB) *Redis {
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

func tryRedis(t testing.TB, bin string) (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), output: &SyncBuffer{}}
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
func (s *Redis) Kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		s.waitFn()
	})
}

// Pause stops the server (SIGSTOP) until Resume: connections stay open
// and nothing answers, as in a Redis that is slow.
func (s *Redis) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused server.
func (s *Redis) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
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

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
