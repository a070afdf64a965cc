package main

import (
	"bufio"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEmulateSIGTERMCleansUp runs the built binary: SIGTERM stops
// emulate as Ctrl-C does, and the certificates and keys it wrote are
// removed (they were left behind in the temporary directory).
func TestEmulateSIGTERMCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokenhttp")
	if out, err := osexec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tmp := t.TempDir()
	cmd := osexec.Command(bin, "emulate", "mtls")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "  try ") {
				started <- true
				break
			}
		}
		for sc.Scan() { // drain: the process writes one more line when it stops
		}
		close(started)
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("emulate printed no try line within 30 s")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) == 0 {
		t.Fatalf("emulate mtls wrote nothing under TMPDIR %s", tmp)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("emulate after SIGTERM: %v, want exit 0", err)
	}
	<-started
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("after SIGTERM, TMPDIR still holds %s: the certificates and keys were left behind", entries[0].Name())
	}
}
